// Command synchub runs the integration sync hub and its operator tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes of every subcommand (DESIGN §7).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// errUsage marks errors that are the caller's fault: bad flags or arguments.
var errUsage = errors.New("usage")

const usage = `synchub — integration sync hub

Usage:
  synchub run [--config FILE]              run the hub (default config: configs/synchub.yaml)
  synchub config validate [--config FILE]  check a config file and report every problem
  synchub sandbox [--listen ADDR] [--port N]
                                           run every vendor's fake and a webhook receiver on
                                           fixed local ports, for configs/sandbox.yaml
  synchub mapping test --config FILE --customer ID --connector NAME --entity FILE [--out -]
                                           print the request a customer's connector would
                                           send for an entity snapshot
  synchub dlq list|show|replay|purge --config FILE [--connector X] [filters]
                                           inspect a connector's dead-letter topic, send its
                                           records again as current snapshots, or purge it
  synchub resync --config FILE --connector X --customer C [--dry-run]
                                           send every current entity of a customer to a
                                           connector again
  synchub version                          print the version

Run 'synchub COMMAND --help' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, errOut: os.Stderr})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, std stdio) int {
	stdout, stderr := std.out, std.errOut
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stderr)
	case "config":
		err = cmdConfig(args[1:], stdout, stderr)
	case "sandbox":
		err = cmdSandbox(ctx, args[1:], stdout, stderr)
	case "mapping":
		err = cmdMapping(ctx, args[1:], stdout, stderr)
	case "dlq":
		err = cmdDLQ(ctx, args[1:], std)
	case "resync":
		err = cmdResync(ctx, args[1:], std)
	case "version":
		fmt.Fprintln(stdout, "synchub", version)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "synchub: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "synchub:", err)
		return exitUsage
	default:
		fmt.Fprintln(stderr, "synchub:", err)
		return exitFailure
	}
}

// newFlagSet returns a flag set that reports errors as usage errors instead
// of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	return nil
}
