package ope

import (
	"compress/gzip"
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"testing"
)

// obdRow is one impression of the Open Bandit Dataset extract.
type obdRow struct {
	item, pos  int // pos 0-2
	click      float64
	propensity float64
}

func readOBD(t testing.TB, name string) []obdRow {
	t.Helper()
	f, err := os.Open("testdata/obd/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(z).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows []obdRow
	for i, r := range recs[1:] {
		item, err1 := strconv.Atoi(r[0])
		pos, err2 := strconv.Atoi(r[1])
		click, err3 := strconv.ParseFloat(r[2], 64)
		p, err4 := strconv.ParseFloat(r[3], 64)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || pos < 1 || pos > 3 {
			t.Fatalf("%s line %d: %q", name, i+2, r)
		}
		rows = append(rows, obdRow{item, pos - 1, click, p})
	}
	return rows
}

// obdItems is the number of items of the men campaign.
const obdItems = 34

// obdTarget is the production Thompson sampling policy's probability of
// showing each item at each position, time-averaged over its log, by
// one of two estimates:
//   - "propensity": the mean of the logged propensity_score of the
//     impressions of the item at the position, normalised to sum to 1
//     at each position (the mean is over the moments the item was
//     shown, which favours the moments its probability was high);
//   - "frequency": the share of the position's impressions that showed
//     the item (an unbiased estimate of the time-averaged probability,
//     which does not read the propensity column).
func obdTarget(rows []obdRow, how string) [3][obdItems]float64 {
	var sum, n [3][obdItems]float64
	var perPos [3]float64
	for _, r := range rows {
		sum[r.pos][r.item] += r.propensity
		n[r.pos][r.item]++
		perPos[r.pos]++
	}
	var pi [3][obdItems]float64
	for k := range 3 {
		var tot float64
		for i := range obdItems {
			switch how {
			case "propensity":
				if n[k][i] > 0 {
					pi[k][i] = sum[k][i] / n[k][i]
				}
			case "frequency":
				pi[k][i] = n[k][i] / perPos[k]
			}
			tot += pi[k][i]
		}
		for i := range obdItems {
			pi[k][i] /= tot
		}
	}
	return pi
}

// obdModel is the DR reward model: each item's mean CTR under the
// production priors, alpha/(alpha+beta).
func obdModel(t testing.TB) [obdItems]float64 {
	t.Helper()
	f, err := os.Open("testdata/obd/prior_bts_men.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) != obdItems+1 {
		t.Fatalf("prior_bts_men.csv: %d rows, %v", len(recs), err)
	}
	var q [obdItems]float64
	for i, r := range recs[1:] {
		a, _ := strconv.ParseFloat(r[1], 64)
		b, _ := strconv.ParseFloat(r[2], 64)
		q[i] = a / (a + b)
	}
	return q
}

// obdSamples is the random log as samples for the target policy pi:
// one impression a sample, its reward the click.
func obdSamples(random []obdRow, pi [3][obdItems]float64, q [obdItems]float64) []Sample {
	samples := make([]Sample, len(random))
	for j, r := range random {
		var direct float64
		for i := range obdItems {
			direct += pi[r.pos][i] * q[i]
		}
		samples[j] = Sample{
			Items:      []Item{{Reward: r.click, Logging: r.propensity, Target: pi[r.pos][r.item], Model: q[r.item]}},
			Direct:     direct,
			TargetMass: 1,
		}
	}
	return samples
}

// TestOBDThompsonFromRandom is the check on real logged traffic: from
// the 10,000 impressions ZOZOTOWN's uniform random policy logged,
// estimate the CTR its production Thompson sampling policy would have
// reached, and compare with the CTR that policy's own log shows, 0.69%
// (69 clicks in 10,000 impressions). Each estimator's 95% interval must
// cover it. The numbers are in docs/benchmarks.md ("Issue 14:
// off-policy evaluation on the Open Bandit Dataset"); go test -v prints
// them.
func TestOBDThompsonFromRandom(t *testing.T) {
	random := readOBD(t, "random_men.csv.gz")
	bts := readOBD(t, "bts_men.csv.gz")
	if len(random) != 10000 || len(bts) != 10000 {
		t.Fatalf("%d and %d impressions, want 10,000 each", len(random), len(bts))
	}
	var clicks float64
	for _, r := range bts {
		clicks += r.click
	}
	truth := clicks / float64(len(bts))
	if clicks != 69 {
		t.Fatalf("the Thompson log has %v clicks, want 69", clicks)
	}
	q := obdModel(t)
	for _, how := range []string{"propensity", "frequency"} {
		res, err := Evaluate(obdSamples(random, obdTarget(bts, how), q), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("target by %s: Thompson log CTR %.3f%%; random log CTR %s; ESS %.0f of %d, max weight %.2f, warnings %q",
			how, 100*truth, pct(res.Logged), res.ESS, res.Items, res.MaxWeight, res.Warnings)
		for _, e := range []struct {
			name string
			est  Estimate
		}{{"IPS", res.IPS}, {"SNIPS", res.SNIPS}, {"DR", res.DR}} {
			t.Logf("  %-5s %s, %+.3f points from the truth", e.name, pct(e.est), 100*(e.est.Value-truth))
			if !e.est.Covers(truth) {
				t.Errorf("target by %s: %s %s does not cover the Thompson log's CTR %.3f%%", how, e.name, pct(e.est), 100*truth)
			}
		}
		if len(res.Warnings) != 0 {
			t.Errorf("target by %s: warnings %q, want none (uniform logging overlaps everything)", how, res.Warnings)
		}
	}
}

func pct(e Estimate) string {
	return fmt.Sprintf("%.3f%% [%.3f%%, %.3f%%]", 100*e.Value, 100*e.Low, 100*e.High)
}
