package retry

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Dead-letter headers (DESIGN §3). The __connect.errors.* names are Kafka
// Connect's, so tooling written for Connect DLQs reads ours.
const (
	HeaderTopic          = "__connect.errors.topic"
	HeaderPartition      = "__connect.errors.partition"
	HeaderOffset         = "__connect.errors.offset"
	HeaderConnectorName  = "__connect.errors.connector.name"
	HeaderExceptionClass = "__connect.errors.exception.class.name"
	HeaderExceptionMsg   = "__connect.errors.exception.message"

	HeaderCustomer      = "synchub.customer"
	HeaderConnector     = "synchub.connector"
	HeaderErrorClass    = "synchub.error_class"
	HeaderHTTPStatus    = "synchub.http_status"
	HeaderAttempts      = "synchub.attempts"
	HeaderFirstFailedAt = "synchub.first_failed_at"
	HeaderReplayCount   = "synchub.replay_count"
)

// Origin is where a dead-lettered record was read and who failed it.
type Origin struct {
	Topic     string
	Partition int32
	Offset    int64
	Connector string
	Customer  string
}

// DeadLetterHeaders returns the headers a record failed with err carries on
// a dead-letter topic. replayCount is how often it had been replayed before.
func DeadLetterHeaders(o Origin, err error, replayCount int, now time.Time) map[string]string {
	h := map[string]string{
		HeaderTopic:          o.Topic,
		HeaderPartition:      strconv.FormatInt(int64(o.Partition), 10),
		HeaderOffset:         strconv.FormatInt(o.Offset, 10),
		HeaderConnectorName:  o.Connector,
		HeaderConnector:      o.Connector,
		HeaderCustomer:       o.Customer,
		HeaderErrorClass:     string(ClassOf(err)),
		HeaderExceptionClass: exceptionClass(err),
		HeaderExceptionMsg:   err.Error(),
		HeaderReplayCount:    strconv.Itoa(replayCount),
		HeaderAttempts:       "1",
		HeaderFirstFailedAt:  now.UTC().Format(time.RFC3339Nano),
	}
	var e *Error
	if errors.As(err, &e) {
		h[HeaderAttempts] = strconv.Itoa(max(e.Attempts, 1))
		if e.HTTPStatus != 0 {
			h[HeaderHTTPStatus] = strconv.Itoa(e.HTTPStatus)
		}
		if !e.FirstFailedAt.IsZero() {
			h[HeaderFirstFailedAt] = e.FirstFailedAt.UTC().Format(time.RFC3339Nano)
		}
	}
	return h
}

// exceptionClass names the failure the way Connect's header does: the type
// of the innermost cause, prefixed by the class for classified errors.
func exceptionClass(err error) string {
	cause := err
	for {
		next := errors.Unwrap(cause)
		if next == nil {
			break
		}
		cause = next
	}
	var e *Error
	if errors.As(err, &e) {
		return fmt.Sprintf("synchub.%s(%T)", e.Class, cause)
	}
	return fmt.Sprintf("%T", cause)
}
