package stream

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrorAction is what an error handler decides.
type ErrorAction int

const (
	// Fail stops the task (and the worker's stream thread) with the error.
	Fail ErrorAction = iota
	// Continue skips the record (it is counted as dropped) and goes on.
	Continue
)

// ErrorContext tells an error handler where the error happened.
type ErrorContext struct {
	// Node is the processor (or source, or sink) that failed.
	Node string
	// TaskID is the task.
	TaskID TaskID
	// Source is the input record being processed when the error happened,
	// as read from its topic; nil inside a punctuator.
	Source *RawRecord
}

// ErrorHandler decides what to do with a record that failed. The task
// logs every error before calling it.
type ErrorHandler func(ctx ErrorContext, err error) ErrorAction

// LogAndFail is the default handler: the error stops processing (Kafka's
// LogAndFailExceptionHandler).
func LogAndFail(ErrorContext, error) ErrorAction { return Fail }

// LogAndContinue skips the failed record (Kafka's
// LogAndContinueExceptionHandler); skipped records are counted as dropped.
func LogAndContinue(ErrorContext, error) ErrorAction { return Continue }

// ErrorHandlers configures how a task treats bad records. The zero value
// fails on every error, Kafka Streams' default.
type ErrorHandlers struct {
	// Deserialization handles records whose key or value cannot be
	// deserialized. Default LogAndFail.
	Deserialization ErrorHandler
	// Processing handles errors returned by processors. Default LogAndFail.
	Processing ErrorHandler
	// Production handles records that cannot be serialized or written to
	// their topic. Default LogAndFail.
	Production ErrorHandler
	// DeadLetterTopic, when set, receives every record a handler was
	// called for — the input record as read, with the error in headers
	// (see DeadLetterHeaders) — whatever the handler decides, as Kafka's
	// errors.dead.letter.queue.topic.name does.
	DeadLetterTopic string
}

// The headers of a dead-letter record (the names Kafka Streams uses, KIP-1034).
const (
	HeaderErrorException = "__streams.errors.exception"
	HeaderErrorMessage   = "__streams.errors.message"
	HeaderErrorTopic     = "__streams.errors.topic"
	HeaderErrorPartition = "__streams.errors.partition"
	HeaderErrorOffset    = "__streams.errors.offset"
	HeaderErrorNode      = "__streams.errors.processor"
)

func (h ErrorHandlers) deser() ErrorHandler { return orFail(h.Deserialization) }
func (h ErrorHandlers) proc() ErrorHandler  { return orFail(h.Processing) }
func (h ErrorHandlers) prod() ErrorHandler  { return orFail(h.Production) }

func orFail(h ErrorHandler) ErrorHandler {
	if h == nil {
		return LogAndFail
	}
	return h
}

// deadLetter builds the dead-letter record for src failing with err.
func deadLetter(topic, kind, node string, src *RawRecord, err error) RawRecord {
	rec := RawRecord{Topic: topic, Partition: -1}
	if src != nil {
		rec.Key, rec.Value, rec.Timestamp = src.Key, src.Value, src.Timestamp
		rec.Headers = append(rec.Headers, src.Headers...)
	}
	rec.Headers = append(rec.Headers,
		Header{Key: HeaderErrorException, Value: []byte(kind)},
		Header{Key: HeaderErrorMessage, Value: []byte(err.Error())},
		Header{Key: HeaderErrorNode, Value: []byte(node)})
	if src != nil {
		rec.Headers = append(rec.Headers,
			Header{Key: HeaderErrorTopic, Value: []byte(src.Topic)},
			Header{Key: HeaderErrorPartition, Value: []byte(strconv.Itoa(int(src.Partition)))},
			Header{Key: HeaderErrorOffset, Value: []byte(strconv.FormatInt(src.Offset, 10))})
	}
	return rec
}

// TaskError is the error a task fails with: the node, the record's
// position and the cause.
type TaskError struct {
	Task   TaskID
	Node   string
	Kind   string // "deserialization", "processing", "production" or "timestamp"
	Source *RawRecord
	Err    error
}

// Error describes the failure.
func (e *TaskError) Error() string {
	if e.Source != nil {
		return fmt.Sprintf("stream: task %s: %s error in %s at %s-%d@%d: %v", e.Task, e.Kind, e.Node, e.Source.Topic, e.Source.Partition, e.Source.Offset, e.Err)
	}
	return fmt.Sprintf("stream: task %s: %s error in %s: %v", e.Task, e.Kind, e.Node, e.Err)
}

// Unwrap returns the cause.
func (e *TaskError) Unwrap() error { return e.Err }

// ErrInvalidTimestamp is the cause (errors.Is) of the errors about records
// whose timestamp is negative or could not be extracted: the TaskError of
// FailOnInvalidTimestamp, and the dead-letter message of
// SkipOnInvalidTimestamp.
var ErrInvalidTimestamp = errors.New("stream: invalid timestamp")
