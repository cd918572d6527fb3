// Command sim is the proof that nextbest's learning works: a simulation
// of a retailer's website in which the truth is known.
//
// It builds a synthetic population (lifetime value lognormal, loyalty
// tier, age, recency, cart, page views, app, interests) and a catalog of
// features, segments and offers with eligibility rules, compiled by
// rules.Load like any catalog. Every offer converts with a probability
// that depends on the customer's features through a hidden logistic model
// the engine never sees: mostly through what the segments are built on,
// partly (--residual, a quarter of the variance by default) through
// features no segment captures. The same sequence of customers is then
// decided five ways, each through the real decision engine, which alone
// says which offers are eligible, with each policy's outcomes drawn from
// the truth by its own random stream:
//
//   - random: an offer picked uniformly among the eligible ones;
//   - static: the catalog ranked by value × weight (arbitration: static);
//   - learned: nextbest's default, propensity × value × weight, with
//     propensities learned by Thompson sampling from its own impressions
//     and conversions, on retail by a learning model (learning.model: the
//     segments and five numeric features; --no-model: counts per offer
//     and first segment alone), fed back through
//     decision.AppendOutcomeDeltas exactly as the outcome path does, and
//     published to the engine as a new featurestore.LearnTable every
//     --refresh decisions, as nextbest serve publishes its outcomes every
//     100 ms;
//   - segment oracle: knows each offer's true mean rate per learn key,
//     the ceiling of learning by segment;
//   - oracle: knows every customer's true probabilities and shows the
//     eligible offer of highest probability × value.
//
// It prints a table and, last, one line of JSON whose headline numbers
// are expected value-weighted conversions per decision over the last
// half of the run. The run is deterministic for a seed: the simulation is
// single-threaded and runs on one P, so the engine's pooled Thompson
// sampling stream is never dropped (see main).
//
// --population quiet-winner (3 personas × 6 offers, caps binding, a
// high-converting low-value winner) and --population obd (the Open Bandit
// Dataset's ZOZOTOWN production priors, 80 items, embedded from
// testdata/obd; 3 items a decision, as on the site) are small table-truth
// worlds (world.go) where each policy keeps its own contact history, so
// caps bind per policy and the sim counts violations; --seeds N
// summarises mean and worst runs.
//
//	go run ./bench/sim
//	go run ./bench/sim --seed 7 --explore greedy
//	go run ./bench/sim --population all --seeds 20
//	go run ./bench/sim --residual 0   # the segments see all that drives behaviour
package main
