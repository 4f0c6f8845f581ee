package kafka_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/synchub/synchub/kafka"
)

type testRecord struct {
	key, lane string
}

// produceRecords writes records to topic and returns how many went to each
// partition.
func produceRecords(t *testing.T, addr, topic string, recs []testRecord) {
	t.Helper()
	producer, err := sarama.NewSyncProducer([]string{addr}, kafka.SaramaConfig("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, r := range recs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(r.key), Value: sarama.StringEncoder(fmt.Sprint(i))}
		if r.lane != "" {
			msgs[i].Headers = []sarama.RecordHeader{{Key: []byte("lane"), Value: []byte(r.lane)}}
		}
	}
	if err := producer.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

func subscribe(t *testing.T, cfg kafka.SubscriberConfig, topic string) (*kafka.Subscriber, <-chan *message.Message) {
	t.Helper()
	sub, err := kafka.NewSubscriber(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub, msgs
}

func recordOf(t *testing.T, msg *message.Message) kafka.Record {
	t.Helper()
	rec, ok := kafka.RecordFromContext(msg.Context())
	if !ok {
		t.Fatal("message without record")
	}
	return rec
}

func TestKeyOrderedConcurrency(t *testing.T) {
	b := startBroker(t)
	ensure(t, b.Addr(), "t", 2)
	var recs []testRecord
	for i := range 1000 {
		recs = append(recs, testRecord{key: fmt.Sprintf("k%d", i%20)})
	}
	produceRecords(t, b.Addr(), "t", recs)
	_, msgs := subscribe(t, kafka.SubscriberConfig{Brokers: []string{b.Addr()}, Group: "g", MaxInFlight: 16}, "t")

	var mu sync.Mutex
	out := map[string]bool{}
	last := map[string]int64{}
	inFlight, peak, seen := 0, 0, 0
	var wg sync.WaitGroup
	for seen < len(recs) {
		msg := <-msgs
		rec := recordOf(t, msg)
		key := string(rec.Key)
		mu.Lock()
		if out[key] {
			t.Errorf("two messages of key %s out at once", key)
		}
		if prev, ok := last[key]; ok && rec.Offset <= prev {
			t.Errorf("key %s: offset %d after %d", key, rec.Offset, prev)
		}
		out[key], last[key] = true, rec.Offset
		inFlight++
		peak = max(peak, inFlight)
		seen++
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // a handler's work
			mu.Lock()
			out[key] = false
			inFlight--
			mu.Unlock()
			msg.Ack()
		}()
	}
	wg.Wait()
	if peak < 4 {
		t.Errorf("at most %d messages were out at once; want real concurrency", peak)
	}
}

// A subscriber stopped with messages out (as a kill would leave them) must
// let the next one see every record that was not acknowledged.
func TestStopMidFlightLosesNoOffset(t *testing.T) {
	b := startBroker(t)
	ensure(t, b.Addr(), "t", 2)
	var recs []testRecord
	for i := range 400 {
		recs = append(recs, testRecord{key: fmt.Sprintf("k%d", i%50)})
	}
	produceRecords(t, b.Addr(), "t", recs)
	cfg := kafka.SubscriberConfig{Brokers: []string{b.Addr()}, Group: "g", MaxInFlight: 32, RevokeGrace: 10 * time.Millisecond}

	sub, msgs := subscribe(t, cfg, "t")
	type pos struct {
		p int32
		o int64
	}
	acked := map[pos]bool{}
	var held []*message.Message
	for len(acked) < 200 {
		msg := <-msgs
		rec := recordOf(t, msg)
		if len(held) < 10 && rand.IntN(3) == 0 {
			held = append(held, msg) // never finished: the "kill"
			continue
		}
		acked[pos{rec.Partition, rec.Offset}] = true
		msg.Ack()
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	for _, m := range held {
		if acked[pos{recordOf(t, m).Partition, recordOf(t, m).Offset}] {
			t.Fatal("test bug: held message acked")
		}
	}

	_, msgs = subscribe(t, cfg, "t")
	for len(acked) < len(recs) {
		select {
		case msg := <-msgs:
			rec := recordOf(t, msg)
			acked[pos{rec.Partition, rec.Offset}] = true
			msg.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d records ever acknowledged: the rest were lost", len(acked), len(recs))
		}
	}
}

func TestRebalanceBetweenTwoMembers(t *testing.T) {
	b := startBroker(t)
	ensure(t, b.Addr(), "t", 4)
	var recs []testRecord
	for i := range 2000 {
		recs = append(recs, testRecord{key: fmt.Sprintf("k%d", i%40)})
	}
	cfg := kafka.SubscriberConfig{Brokers: []string{b.Addr()}, Group: "g", MaxInFlight: 8, RevokeGrace: time.Second}
	_, first := subscribe(t, cfg, "t")
	produceRecords(t, b.Addr(), "t", recs[:1000])

	var mu sync.Mutex
	acked := map[string]map[int64]bool{}
	order := map[string][]int64{} // offsets seen per member and key
	consume := func(member string, msgs <-chan *message.Message, stop <-chan struct{}) {
		for {
			select {
			case msg, ok := <-msgs:
				if !ok {
					return
				}
				rec := recordOf(t, msg)
				mu.Lock()
				k := fmt.Sprintf("%s/%d", rec.Key, rec.Partition)
				if acked[k] == nil {
					acked[k] = map[int64]bool{}
				}
				acked[k][rec.Offset] = true
				order[member+"/"+k] = append(order[member+"/"+k], rec.Offset)
				mu.Unlock()
				msg.Ack()
			case <-stop:
				return
			}
		}
	}
	stop := make(chan struct{})
	defer close(stop)
	go consume("a", first, stop)
	assigned := make(chan struct{})
	var once sync.Once
	cfgB := cfg
	cfgB.OnAssign = func(context.Context, string, []int32) error {
		once.Do(func() { close(assigned) })
		return nil
	}
	_, second := subscribe(t, cfgB, "t")
	go consume("b", second, stop)
	select {
	case <-assigned:
	case <-time.After(30 * time.Second):
		t.Fatal("the second member was never assigned partitions")
	}
	produceRecords(t, b.Addr(), "t", recs[1000:])

	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := 0
		for _, offs := range acked {
			n += len(offs)
		}
		members := map[string]bool{}
		for mk := range order {
			members[mk[:1]] = true
		}
		mu.Unlock()
		if n == len(recs) && len(members) == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records acknowledged, members that got records: %v", n, len(recs), members)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCoalesceHoldsTheRedeliveryWindowAndEmitsNewestPerKey(t *testing.T) {
	b := startBroker(t)
	ensure(t, b.Addr(), "t", 1)
	var recs []testRecord
	for range 10 {
		for k := range 5 {
			recs = append(recs, testRecord{key: fmt.Sprintf("k%d", k)})
		}
	}
	produceRecords(t, b.Addr(), "t", recs)
	_, msgs := subscribe(t, kafka.SubscriberConfig{Brokers: []string{b.Addr()}, Group: "g", MaxInFlight: 10, Coalesce: true}, "t")
	got := map[string]int64{}
	for range 5 {
		msg := <-msgs
		rec := recordOf(t, msg)
		got[string(rec.Key)] = rec.Offset
		msg.Ack()
	}
	for k := range 5 {
		if want := int64(45 + k); got[fmt.Sprintf("k%d", k)] != want {
			t.Errorf("k%d emitted at offset %d, want its newest, %d", k, got[fmt.Sprintf("k%d", k)], want)
		}
	}
	select {
	case msg := <-msgs:
		t.Errorf("an older record was emitted after the newest: offset %d", recordOf(t, msg).Offset)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestLanesKeepASlowLaneFromTakingEverySlot(t *testing.T) {
	b := startBroker(t)
	ensure(t, b.Addr(), "t", 1)
	var recs []testRecord
	for i := range 200 {
		recs = append(recs, testRecord{key: fmt.Sprintf("slow%d", i), lane: "slow"}, testRecord{key: fmt.Sprintf("fast%d", i), lane: "fast"})
	}
	produceRecords(t, b.Addr(), "t", recs)
	_, msgs := subscribe(t, kafka.SubscriberConfig{
		Brokers: []string{b.Addr()}, Group: "g", MaxInFlight: 8, LaneHeader: "lane", MaxInFlightPerLane: 4,
	}, "t")
	slowOut, fastDone := 0, 0
	for fastDone < 200 {
		select {
		case msg := <-msgs:
			if msg.Metadata.Get("lane") == "slow" {
				slowOut++ // never finished: a vendor that hangs
				if slowOut > 4 {
					t.Fatalf("%d slow-lane messages out, cap is 4", slowOut)
				}
				continue
			}
			fastDone++
			msg.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("fast lane stuck after %d of 200 behind a slow lane holding %d", fastDone, slowOut)
		}
	}
}
