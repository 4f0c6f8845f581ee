package kafka

import (
	"time"

	"github.com/IBM/sarama"
)

// SaramaConfig is the client configuration every synchub client starts from.
//
// Producers wait for all replicas and are idempotent, so a retried produce
// never duplicates a snapshot. Partitions are chosen by Partitioner: the
// aggregator names the partition itself (co-partitioning), everything else
// hashes its key like the Java client. Consumers start from the oldest
// offset, so a connector enabled later still sees every entity.
//
// The protocol version is 2.3: from 2.4 on, Sarama v1.43.3 speaks flexible
// (KIP-482) group requests whose responses it fails to decode from kfake
// ("invalid byteslice length"), and 2.3 already has idempotence and static
// membership.
func SaramaConfig(clientID string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = clientID
	cfg.Version = sarama.V2_3_0_0
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Partitioner = NewPartitioner
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Return.Errors = true
	// A short fetch wait bounds per-hop latency when a fetch is not woken
	// by new data (observed with kfake, where the default 500ms turned into
	// ~100ms per record on a busy partition); idle cost is a few small
	// fetches per second per broker.
	cfg.Consumer.MaxWaitTime = 20 * time.Millisecond
	cfg.Consumer.Offsets.AutoCommit.Enable = true
	cfg.Consumer.Offsets.AutoCommit.Interval = time.Second
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = time.Second
	cfg.Consumer.Group.Rebalance.Timeout = 30 * time.Second
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	return cfg
}
