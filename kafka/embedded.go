package kafka

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is a single-node Kafka-protocol broker running inside the
// process, persisted to a data directory so it survives restarts.
type Embedded struct {
	cluster *kfake.Cluster
	addr    string
}

// StartEmbedded starts the broker listening on listen (host:port) with its
// state under dataDir. The advertised address is the listen address, so
// listen must be one that clients can dial (not 0.0.0.0).
func StartEmbedded(listen, dataDir string) (*Embedded, error) {
	_, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("embedded broker listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker listen port %q: %w", portStr, err)
	}
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DataDir(dataDir),
		// kfake always asks for 127.0.0.1; honour the configured host.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, listen)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("starting embedded broker on %s with data in %s: %w", listen, dataDir, err)
	}
	return &Embedded{cluster: cluster, addr: cluster.ListenAddrs()[0]}, nil
}

// Addr is the address clients connect to.
func (e *Embedded) Addr() string { return e.addr }

// Cluster exposes the underlying kfake cluster for tests that inject faults.
func (e *Embedded) Cluster() *kfake.Cluster { return e.cluster }

// Close stops the broker and flushes its state to disk.
func (e *Embedded) Close() { e.cluster.Close() }
