// Command bench measures synchub's connector stage against a naive peer.
//
// In one process, for each mode in turn, it starts a fresh embedded broker,
// a local webhook receiver for every customer and the hub (aggregator and
// webhook connector), then:
//
//  1. catch-up: produces a backlog of seed events (users created, then
//     random logins, failed logins and profile updates) before the hub
//     starts, starts the hub and times until every user's newest version
//     has reached its customer's endpoint;
//  2. steady: produces at a fixed rate, each event stamped with its produce
//     time, and measures event-to-delivery latency: the time from producing
//     an event until the receiver has accepted a snapshot that contains it
//     (its version or a newer one, so coalesced events count too).
//
// The modes differ only in the connector stage's configuration:
//
//   - synchub: batch_size 100, the default dispatch (many records in
//     flight per partition, coalescing, 20ms linger);
//   - naive: batch_size 1, one record in flight per partition and no
//     coalescing: one request per event, like a seed-style connector.
//
// The receiver sleeps -latency per request to stand in for the endpoint's
// own work. Real CRM APIs take 100-500 ms per request, which only widens the
// gap: the naive mode pays the latency once per event, synchub once per
// batch of up to 100, with many batches in flight.
//
// Results are printed as a table and written as JSON (-out). The exit status
// is 1 if any endpoint received an older version of a user after a newer
// one, a bad signature or a malformed body, and 2 for bad flags.
//
// Usage:
//
//	go run ./bench [-events 100000] [-users 2000] [-customers 10] [-steady-rate 2000]
//	               [-steady-for 15s] [-latency 5ms] [-out bench/results.json]
//	               [-modes synchub,naive] [-cpuprofile FILE]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command-line settings.
type options struct {
	events, users, customers, partitions int
	steadyRate                           int
	steadyFor, latency                   time.Duration
	catchUpTimeout, drainTimeout         time.Duration
	seed                                 uint64
	out, cpuProfile                      string
	modes                                []mode
}

// parseOptions reads the flags; errors are already reported to stderr.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.events, "events", 100000, "seed events in the catch-up backlog (user creations included)")
	fs.IntVar(&o.users, "users", 2000, "users, spread round-robin over the customers")
	fs.IntVar(&o.customers, "customers", 10, "customers org_0, org_1, … each with a webhook")
	fs.IntVar(&o.partitions, "partitions", 8, "partitions of the hub's topics")
	fs.IntVar(&o.steadyRate, "steady-rate", 2000, "events per second in the steady phase")
	fs.DurationVar(&o.steadyFor, "steady-for", 15*time.Second, "how long the steady phase produces")
	fs.DurationVar(&o.latency, "latency", 5*time.Millisecond, "simulated endpoint latency per request")
	fs.DurationVar(&o.catchUpTimeout, "catchup-timeout", 10*time.Minute, "give up catching up after this long")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 2*time.Minute, "after the steady phase, wait at most this long for its deliveries")
	fs.Uint64Var(&o.seed, "seed", 1, "workload random seed")
	fs.StringVar(&o.out, "out", "bench/results.json", "JSON results file (empty: none)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	modeList := fs.String("modes", "synchub,naive", "modes to run, in order: synchub, naive")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, reportUsage(stderr, "unexpected arguments: %v", fs.Args())
	}
	switch {
	case o.users < 1 || o.customers < 1 || o.partitions < 1:
		return o, reportUsage(stderr, "-users, -customers and -partitions must be at least 1")
	case o.events < o.users:
		return o, reportUsage(stderr, "-events (%d) must be at least -users (%d): every user is created first", o.events, o.users)
	case o.steadyRate < 0 || o.steadyFor < 0 || o.latency < 0:
		return o, reportUsage(stderr, "-steady-rate, -steady-for and -latency must not be negative")
	}
	for _, name := range strings.Split(*modeList, ",") {
		m, ok := modeNamed(strings.TrimSpace(name))
		if !ok {
			return o, reportUsage(stderr, "unknown mode %q (want synchub or naive)", name)
		}
		o.modes = append(o.modes, m)
	}
	return o, nil
}

func reportUsage(stderr io.Writer, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	fmt.Fprintln(stderr, "bench:", err)
	return err
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.cpuProfile != "" {
		stopProfile, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		defer stopProfile()
	}
	rep := newReport(o)
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
	for _, m := range o.modes {
		res, err := runMode(ctx, o, m, logf)
		if err != nil {
			fmt.Fprintf(stderr, "bench: mode %s: %v\n", m.name, err)
			return 1
		}
		rep.Modes = append(rep.Modes, res)
	}
	rep.compare()
	rep.printText(stdout)
	if o.out != "" {
		if err := rep.writeJSON(o.out); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", o.out)
	}
	if bad := rep.correctnessProblems(); len(bad) > 0 {
		fmt.Fprintln(stderr, "bench: FAILED:", strings.Join(bad, "; "))
		return 1
	}
	return 0
}

// startCPUProfile profiles the process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
