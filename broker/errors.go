package broker

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Sentinel errors returned by the topic manager. Each wraps the Kafka error
// its clients receive, so errorCode maps them.
var (
	// ErrTopicExists: creating a topic that exists.
	ErrTopicExists = fmt.Errorf("topic already exists: %w", kerr.TopicAlreadyExists)
	// ErrTopicNotFound: the topic or partition does not exist.
	ErrTopicNotFound = fmt.Errorf("unknown topic or partition: %w", kerr.UnknownTopicOrPartition)
	// ErrInternalTopic: clients cannot write to or delete internal topics.
	ErrInternalTopic = fmt.Errorf("internal topic: %w", kerr.InvalidTopicException)
)

// errorCode maps err to the Kafka error code clients receive: the code of
// the *kerr.Error it wraps, UNKNOWN_SERVER_ERROR otherwise, 0 for nil.
// It is the one place errors become codes.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is err's text for the ErrorMessage fields of responses.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// errorName is the Kafka name of code, "NONE" for 0; used as a metric label.
func errorName(code int16) string {
	if code == 0 {
		return "NONE"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e.Message
	}
	return fmt.Sprintf("CODE_%d", code)
}
