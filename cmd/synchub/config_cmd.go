package main

import (
	"fmt"
	"io"

	"github.com/synchub/synchub/config"
)

const defaultConfig = "configs/synchub.yaml"

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "validate" {
		return fmt.Errorf("%w: synchub config validate [--config FILE]", errUsage)
	}
	fs := newFlagSet("config validate", stderr)
	path := fs.String("config", defaultConfig, "config file to check")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load(*path, nil)
	if err != nil {
		return fmt.Errorf("%s:\n%w", *path, err)
	}
	fmt.Fprintf(stdout, "%s: ok (%d customers)\n", *path, len(cfg.Customers))
	return nil
}
