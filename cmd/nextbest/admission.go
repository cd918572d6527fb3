package main

import (
	"time"

	"github.com/nextbest/nextbest/httpapi"
)

// admissionFlags configure admission control (httpapi.Admission); the
// queue budgets' defaults are httpapi's Default*Queue, the in-flight
// bounds' (0) httpapi's per-CPU defaults, chosen from go run ./bench
// --overload (docs/benchmarks.md).
type admissionFlags struct {
	Admission      bool          `default:"true" negatable:"" env:"NEXTBEST_ADMISSION" help:"Admission control: a request that cannot be served within its class's bounds is shed at once (503 with Retry-After; a decision gets the channel's fallback, marked degraded with reason overload) instead of waiting; --no-admission queues everything, however late."`
	DecideInFlight int           `name:"decide-max-in-flight" default:"0" env:"NEXTBEST_DECIDE_MAX_IN_FLIGHT" help:"Decisions served at once; more wait for a slot (0: 32 per CPU; -1: no bound)."`
	DecideQueue    time.Duration `name:"decide-max-queue" default:"5ms" env:"NEXTBEST_DECIDE_MAX_QUEUE" help:"Longest a decision may wait (for a CPU, then for a slot) before it is answered with the fallback (-1s: no bound)."`
	EventsInFlight int           `name:"events-max-in-flight" default:"0" env:"NEXTBEST_EVENTS_MAX_IN_FLIGHT" help:"Event requests being applied at once; more wait for a slot (0: 4 per CPU; -1: no bound). A request waiting only for the fsync of its write holds no slot."`
	EventsQueue    time.Duration `name:"events-max-queue" default:"100ms" env:"NEXTBEST_EVENTS_MAX_QUEUE" help:"Longest an event request may wait before it gets 503 (-1s: no bound)."`
	OtherInFlight  int           `name:"other-max-in-flight" default:"0" env:"NEXTBEST_OTHER_MAX_IN_FLIGHT" help:"Profile, statistics and catalog administration requests served at once (0: 4 per CPU; -1: no bound). Health checks and /metrics are never shed."`
	OtherQueue     time.Duration `name:"other-max-queue" default:"1s" env:"NEXTBEST_OTHER_MAX_QUEUE" help:"Longest a profile, statistics or administration request may wait before it gets 503 (-1s: no bound)."`
}

func (f *admissionFlags) admission() httpapi.Admission {
	return httpapi.Admission{
		Off:    !f.Admission,
		Decide: httpapi.Limit{InFlight: f.DecideInFlight, Queue: f.DecideQueue},
		Events: httpapi.Limit{InFlight: f.EventsInFlight, Queue: f.EventsQueue},
		Other:  httpapi.Limit{InFlight: f.OtherInFlight, Queue: f.OtherQueue},
	}
}
