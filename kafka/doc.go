// Package kafka holds the hub's Kafka plumbing: the embedded broker, the
// Sarama configuration every client shares, topic creation, the Watermill
// publisher with explicit keys and partitions, and a consumer-group
// subscriber that tells its owner which partitions it was assigned.
package kafka
