package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/synchub/synchub/config"
	"github.com/synchub/synchub/replay"
	"github.com/synchub/synchub/router"
)

const dlqUsage = `Usage:
  synchub dlq list    --config FILE [--connector X] [filters] [--json]
  synchub dlq show    --config FILE [--connector X] [filters] [--limit N] [--json]
  synchub dlq replay  --config FILE --connector X [filters] [--dry-run] [--max-replays N] [--json]
  synchub dlq purge   --config FILE --connector X --older-than AGE [--yes] [--dry-run] [--json]
  synchub resync      --config FILE --connector X --customer C [--dry-run] [--json]

Filters: --customer C, --error-class K (permanent, exhausted, invalid_input,
invalid_mapping), --since T, --until T (RFC 3339 or an age like 24h or 7d), --key ID.

They read the config for the brokers and customers (not the vendors' secrets) and
talk to Kafka directly: with the embedded broker, 'synchub run' must be running.
Replay sends each affected entity's current snapshot to connector.<X>.retry, which
only that connector reads; it is bounded, safe to interrupt and run again.
`

// stdio is a command's standard streams.
type stdio struct {
	in          io.Reader
	out, errOut io.Writer
}

func cmdDLQ(ctx context.Context, args []string, std stdio) error {
	if len(args) == 0 {
		fmt.Fprint(std.errOut, dlqUsage)
		return fmt.Errorf("%w: dlq needs a subcommand: list, show, replay or purge", errUsage)
	}
	switch args[0] {
	case "list", "show", "replay", "purge":
		return dlqCommand(ctx, args[0], args[1:], std)
	case "-h", "--help", "help":
		fmt.Fprint(std.out, dlqUsage)
		return nil
	}
	fmt.Fprint(std.errOut, dlqUsage)
	return fmt.Errorf("%w: unknown dlq subcommand %q", errUsage, args[0])
}

func cmdResync(ctx context.Context, args []string, std stdio) error {
	return dlqCommand(ctx, "resync", args, std)
}

// opFlags are the flags of every dead-letter command; each uses its part.
type opFlags struct {
	config, connector, customer, errorClass, since, until, key, olderThan string
	limit, maxReplays                                                     int
	json, dryRun, yes                                                     bool
}

func dlqCommand(ctx context.Context, name string, args []string, std stdio) error {
	fs := newFlagSet(name, std.errOut)
	fs.Usage = func() { fmt.Fprint(std.errOut, dlqUsage) }
	var f opFlags
	fs.StringVar(&f.config, "config", defaultConfig, "config file")
	fs.StringVar(&f.connector, "connector", "", "connector name, like webhook or hubspot")
	fs.StringVar(&f.customer, "customer", "", "customer id")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	fs.BoolVar(&f.dryRun, "dry-run", false, "say what would be done, change nothing")
	if name != "resync" {
		fs.StringVar(&f.errorClass, "error-class", "", "error class")
		fs.StringVar(&f.since, "since", "", "dead-lettered at or after (RFC 3339 or age)")
		fs.StringVar(&f.until, "until", "", "dead-lettered before (RFC 3339 or age)")
		fs.StringVar(&f.key, "key", "", "entity id")
		fs.IntVar(&f.limit, "limit", 20, "show at most N records (0: all)")
		fs.IntVar(&f.maxReplays, "max-replays", 0, "override dlq.max_replays")
		fs.StringVar(&f.olderThan, "older-than", "", "purge records dead-lettered longer ago than this (like 7d)")
		fs.BoolVar(&f.yes, "yes", false, "purge without asking")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.check(name, fs); err != nil {
		return err
	}
	now := time.Now()
	filter, err := f.filter(now)
	if err != nil {
		return err
	}
	cfg, err := config.LoadLayout(f.config)
	if err != nil {
		return fmt.Errorf("%s:\n%w", f.config, err)
	}
	brokers := cfg.Kafka.Brokers
	if len(brokers) == 0 {
		brokers = []string{cfg.Kafka.Embedded.Listen}
	}
	ops, err := replay.New(replay.Deps{Brokers: brokers, Config: func() *config.Config { return cfg }, Connectors: router.Connectors()})
	if err != nil {
		if len(cfg.Kafka.Brokers) == 0 {
			err = fmt.Errorf("%w\n(the embedded broker runs inside 'synchub run --config %s': start it first)", err, f.config)
		}
		return err
	}
	defer ops.Close()

	err = runOp(ctx, name, ops, f, filter, std)
	if errors.Is(err, replay.ErrUsage) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return err
}

// check reports flag combinations that cannot work, before connecting.
func (f *opFlags) check(name string, fs *flag.FlagSet) error {
	need := map[string][]string{"replay": {"connector"}, "purge": {"connector", "older-than"}, "resync": {"connector", "customer"}}[name]
	var missing []string
	for _, n := range need {
		if fs.Lookup(n).Value.String() == "" {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s needs %s", errUsage, name, strings.Join(missing, " and "))
	}
	if name == "purge" {
		set := map[string]bool{}
		fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
		for _, n := range []string{"customer", "error-class", "since", "until", "key"} {
			if set[n] {
				return fmt.Errorf("%w: purge takes no --%s: Kafka deletes a partition's oldest records, so a purge covers every customer's records older than --older-than", errUsage, n)
			}
		}
	}
	return nil
}

func (f *opFlags) filter(now time.Time) (replay.Filter, error) {
	filter := replay.Filter{Connector: f.connector, Customer: f.customer, ErrorClass: f.errorClass, Key: f.key}
	var err error
	if filter.Since, err = replay.ParseTime(f.since, now); err != nil {
		return filter, fmt.Errorf("%w: --since: %v", errUsage, err)
	}
	if filter.Until, err = replay.ParseTime(f.until, now); err != nil {
		return filter, fmt.Errorf("%w: --until: %v", errUsage, err)
	}
	return filter, nil
}

func runOp(ctx context.Context, name string, ops *replay.Ops, f opFlags, filter replay.Filter, std stdio) error {
	switch name {
	case "list":
		groups, err := ops.List(ctx, filter)
		if err != nil {
			return err
		}
		if f.json {
			return printJSON(std.out, map[string]any{"groups": groups})
		}
		printGroups(std.out, groups)
	case "show":
		records, err := ops.Show(ctx, filter, f.limit)
		if err != nil {
			return err
		}
		if f.json {
			return printJSON(std.out, map[string]any{"records": records})
		}
		printRecords(std.out, records)
	case "replay", "resync":
		opts := replay.Options{DryRun: f.dryRun, MaxReplays: f.maxReplays}
		bar := newProgress(std.errOut, name)
		if bar != nil {
			opts.Progress = bar.update
		}
		var sum replay.Summary
		var err error
		if name == "replay" {
			sum, err = ops.Replay(ctx, filter, opts)
		} else {
			sum, err = ops.Resync(ctx, f.connector, f.customer, opts)
		}
		if bar != nil {
			bar.finish()
		}
		if err != nil {
			return err
		}
		if f.json {
			return printJSON(std.out, sum)
		}
		printSummary(std.out, name, f.connector, sum)
	case "purge":
		return purge(ctx, ops, f, std)
	}
	return nil
}

func purge(ctx context.Context, ops *replay.Ops, f opFlags, std stdio) error {
	age, err := replay.ParseAge(f.olderThan)
	if err != nil {
		return fmt.Errorf("%w: --older-than: %v", errUsage, err)
	}
	plan, err := ops.Purge(ctx, f.connector, age, true)
	if err != nil {
		return err
	}
	if !f.dryRun && !f.yes && plan.Purged > 0 {
		fmt.Fprintf(std.errOut, "Delete %d records dead-lettered before %s from connector.%s.dlq, for every customer? This cannot be undone. [y/N] ",
			plan.Purged, plan.Before.Format(time.RFC3339), f.connector)
		answer, _ := bufio.NewReader(std.in).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return errors.New("purge cancelled: nothing deleted")
		}
	}
	sum := plan
	sum.DryRun = f.dryRun
	if !f.dryRun && plan.Purged > 0 {
		if sum, err = ops.Purge(ctx, f.connector, age, false); err != nil {
			return err
		}
	}
	if f.json {
		return printJSON(std.out, sum)
	}
	verb := "purged"
	if sum.DryRun {
		verb = "would purge"
	}
	fmt.Fprintf(std.out, "%s %d records dead-lettered before %s from connector.%s.dlq\n", verb, sum.Purged, sum.Before.Format(time.RFC3339), f.connector)
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printGroups(w io.Writer, groups []replay.Group) {
	if len(groups) == 0 {
		fmt.Fprintln(w, "no dead-lettered records")
		return
	}
	// Reason lines have no tab: tabwriter leaves a line's last cell out of
	// the column widths, so long messages do not widen the table.
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTOR\tCUSTOMER\tRECORDS\tPENDING\tOLDEST\tNEWEST")
	for _, g := range groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", g.Connector, g.Customer, g.Records, g.Pending,
			g.Oldest.Format(time.RFC3339), g.Newest.Format(time.RFC3339))
		for _, r := range g.Reasons {
			status := ""
			if r.HTTPStatus != 0 {
				status = fmt.Sprintf(", HTTP %d", r.HTTPStatus)
			}
			fmt.Fprintf(tw, "    %d × %s%s, e.g. %s\n", r.Records, r.ErrorClass, status, oneLine(r.Example, 200))
		}
	}
	_ = tw.Flush()
}

func printRecords(w io.Writer, records []replay.Record) {
	if len(records) == 0 {
		fmt.Fprintln(w, "no dead-lettered records")
		return
	}
	for _, r := range records {
		state := "pending"
		if r.Replayed {
			state = "replayed"
		}
		fmt.Fprintf(w, "connector.%s.dlq %d@%d  key=%s  customer=%s  %s  %s\n",
			r.Connector, r.Partition, r.Offset, r.Key, r.Customer, r.DeadLetteredAt.Format(time.RFC3339), state)
		fmt.Fprintf(w, "  reason: %s: %s\n", r.ErrorClass, oneLine(r.Reason, 500))
		fmt.Fprintf(w, "  from: %s %d@%d  version=%d  http_status=%d  attempts=%d  replays=%d\n",
			r.Origin.Topic, r.Origin.Partition, r.Origin.Offset, r.Version, r.HTTPStatus, r.Attempts, r.ReplayCount)
		keys := make([]string, 0, len(r.Headers))
		for k := range r.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintln(w, "  headers:")
		for _, k := range keys {
			fmt.Fprintf(w, "    %s: %s\n", k, oneLine(r.Headers[k], 500))
		}
		payload, _ := json.Marshal(r.Payload)
		fmt.Fprintf(w, "  payload: %s\n\n", payload)
	}
}

func printSummary(w io.Writer, name, connector string, s replay.Summary) {
	prefix := ""
	if s.DryRun {
		prefix = "dry run, nothing sent: "
	}
	what := "dead-lettered records matched"
	if name == "resync" {
		what = "current entities of the customer"
	}
	verb := "sent"
	if s.DryRun {
		verb = "would send"
	}
	fmt.Fprintf(w, "%s%d %s; %s %d current snapshots to connector.%s.retry (answering %d records)\n",
		prefix, s.Matched, what, verb, s.Replayed, connector, s.Answered)
	reasons := make([]string, 0, len(s.Skipped))
	for r := range s.Skipped {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "skipped %d: %s\n", s.Skipped[r], r)
	}
	for _, r := range s.Left {
		fmt.Fprintf(w, "left in the DLQ: %d@%d key=%s customer=%s, replayed %d times already: %s\n",
			r.Partition, r.Offset, r.Key, r.Customer, r.ReplayCount, oneLine(r.Reason, 200))
	}
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// progress draws a bar on a terminal; nil elsewhere, where the summary is
// enough and a bar would only clutter a log.
type progress struct{ bar *progressbar.ProgressBar }

func newProgress(w io.Writer, what string) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &progress{bar: progressbar.NewOptions(-1,
		progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())}
}

func (p *progress) update(done, total int) {
	p.bar.ChangeMax(total)
	_ = p.bar.Set(done)
}

func (p *progress) finish() { _ = p.bar.Finish() }
