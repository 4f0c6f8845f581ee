package main

import (
	"fmt"
	"strings"

	"github.com/synchub/synchub/config"
)

// secretEnv is the environment variable name the benchmark's config gives
// for every webhook secret; the config's getenv answers it, so the real
// environment is never read.
const secretEnv = "BENCH_WEBHOOK_SECRET"

// mode is one way of running the connector stage.
type mode struct {
	name        string
	description string
	batchSize   int
	// dispatch is the YAML flow mapping of the top-level dispatch key; empty
	// keeps the defaults.
	dispatch string
}

// modeNamed returns the mode called name.
func modeNamed(name string) (mode, bool) {
	switch name {
	case "synchub":
		return mode{
			name:        "synchub",
			description: "batch_size 100; default dispatch: many in flight per partition, coalescing, 20ms linger",
			batchSize:   100,
		}, true
	case "naive":
		return mode{
			name:        "naive",
			description: "batch_size 1; one record in flight per partition, no coalescing: one request per event",
			batchSize:   1,
			dispatch:    "{max_in_flight: 1, max_in_flight_per_customer: 1, coalesce: false}",
		}, true
	}
	return mode{}, false
}

// customerID is the id (and organization_id) of the i-th customer.
func customerID(i int) string { return fmt.Sprintf("org_%d", i) }

// configYAML is the hub configuration of mode m against an external broker
// at brokerAddr, every customer's webhook at receiverURL/hooks/<customer>.
func configYAML(m mode, o options, brokerAddr, receiverURL string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kafka:\n  brokers: [%q]\n  partitions: %d\n", brokerAddr, o.partitions)
	if m.dispatch != "" {
		fmt.Fprintf(&b, "dispatch: %s\n", m.dispatch)
	}
	b.WriteString("customers:\n")
	for i := range o.customers {
		id := customerID(i)
		fmt.Fprintf(&b, "  - id: %s\n", id)
		b.WriteString("    connectors:\n      webhook:\n        enabled: true\n")
		fmt.Fprintf(&b, "        url: %s/hooks/%s\n", receiverURL, id)
		fmt.Fprintf(&b, "        secret_env: %s\n", secretEnv)
		fmt.Fprintf(&b, "        batch_size: %d\n", m.batchSize)
		b.WriteString("        retry: {max_attempts: 20, initial_interval: 10ms, max_interval: 200ms}\n")
	}
	return b.String()
}

// parseConfig validates yaml as the hub would, with secret as the value of
// secretEnv.
func parseConfig(yaml, secret string) (*config.Config, error) {
	cfg, err := config.Parse([]byte(yaml), func(name string) (string, bool) {
		if name == secretEnv {
			return secret, true
		}
		return "", false
	})
	if err != nil {
		return nil, fmt.Errorf("benchmark config:\n%w\n%s", err, yaml)
	}
	return cfg, nil
}
