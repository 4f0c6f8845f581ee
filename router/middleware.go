package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/synchub/synchub/kafka"
	"github.com/synchub/synchub/retry"
)

// ConnectorMiddlewares is the one middleware stack of every connector
// handler, outermost first:
//
//  1. PoisonQueueWithFilter: terminal failures (permanent, exhausted,
//     undecodable) go to connector.<c>.dlq and the record is acknowledged.
//     Anything else — a shutdown cancelling a delivery, a broker hiccup — is
//     a Nack, so the record is delivered again instead of dead-lettered.
//  2. deadLetterHeaders: writes the DLQ headers of DESIGN §3 onto the
//     failing message, so the poison queue publishes them.
//  3. Recoverer: a panic becomes an error the layers above can see; a
//     panicking record is treated as undecodable input.
//
// Retries with backoff happen inside the connector's HTTP client (it sees
// status codes and Retry-After), so no Retry middleware sits here: the
// poison queue is outside every retry.
func ConnectorMiddlewares(connector string, dlq message.Publisher, now func() time.Time) ([]message.HandlerMiddleware, error) {
	poison, err := middleware.PoisonQueueWithFilter(dlq, kafka.DLQTopic(connector), retry.Terminal)
	if err != nil {
		return nil, fmt.Errorf("poison queue for %s: %w", connector, err)
	}
	return []message.HandlerMiddleware{
		poison,
		deadLetterHeaders(connector, now),
		panicsAreInvalidInput,
		middleware.Recoverer,
	}, nil
}

func deadLetterHeaders(connector string, now func() time.Time) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err == nil || !retry.Terminal(err) || errors.Is(err, context.Canceled) {
				return out, err
			}
			rec, _ := kafka.RecordFromContext(msg.Context())
			replays, _ := strconv.Atoi(msg.Metadata.Get(retry.HeaderReplayCount))
			headers := retry.DeadLetterHeaders(retry.Origin{
				Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
				Connector: connector, Customer: msg.Metadata.Get(kafka.HeaderOrganizationID),
			}, err, replays, now())
			for k, v := range headers {
				msg.Metadata.Set(k, v)
			}
			if rec.Key != nil {
				kafka.SetKey(msg, rec.Key)
			}
			return out, err
		}
	}
}

func panicsAreInvalidInput(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		var p middleware.RecoveredPanicError
		if errors.As(err, &p) {
			return out, &retry.Error{Class: retry.InvalidInput, Attempts: 1, Err: fmt.Errorf("connector panicked: %v", p.V)}
		}
		return out, err
	}
}
