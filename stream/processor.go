package stream

import (
	"log/slog"
	"time"
)

// Processor is the low-level Processor API: Kafka Streams'
// Processor<KIn, VIn, KOut, VOut>. A topology creates one instance per task
// from a supplier; the instance is used by one goroutine only.
//
// Process returns an error to hand the record to the processing error
// handler (see ProcessingErrorHandler); Init errors fail the task.
type Processor[KIn, VIn, KOut, VOut any] interface {
	// Init is called once before the first record, with the context the
	// processor keeps for forwarding, stores and punctuators.
	Init(ctx ProcessorContext[KOut, VOut]) error
	// Process handles one record.
	Process(rec Record[KIn, VIn]) error
	// Close is called when the task closes.
	Close() error
}

// ProcessorSupplier creates a new Processor instance; it is called once per
// task and must return a new instance each time.
type ProcessorSupplier[KIn, VIn, KOut, VOut any] func() Processor[KIn, VIn, KOut, VOut]

// PunctuationType says which clock drives a punctuator.
type PunctuationType int

const (
	// StreamTime punctuators fire as the task's stream time (the largest
	// record timestamp seen) advances, on a grid aligned to the first
	// punctuation time; intervals skipped by a jump fire once.
	StreamTime PunctuationType = iota
	// WallClockTime punctuators fire as the wall clock advances, checked
	// between records and at least once per poll; missed intervals fire
	// once and the next fire time stays on the original grid.
	WallClockTime
)

// String returns "STREAM_TIME" or "WALL_CLOCK_TIME".
func (p PunctuationType) String() string {
	if p == WallClockTime {
		return "WALL_CLOCK_TIME"
	}
	return "STREAM_TIME"
}

// Cancellable cancels a scheduled punctuator.
type Cancellable interface{ Cancel() }

// ProcessorContext is what a processor sees of its task: Kafka Streams'
// api.ProcessorContext. It is valid from Init until Close and must only be
// used from the processor's own calls (the task's goroutine).
type ProcessorContext[K, V any] interface {
	// Forward passes rec to every child of this processor.
	Forward(rec Record[K, V])
	// ForwardTo passes rec to the named child only; an unknown name is a
	// processing error.
	ForwardTo(child string, rec Record[K, V])
	// Schedule registers a punctuator firing every interval on the given
	// clock; fn receives the punctuation time (epoch ms).
	Schedule(interval time.Duration, typ PunctuationType, fn func(ts int64)) Cancellable
	// RecordMetadata returns where the current record came from; ok is
	// false inside a punctuator.
	RecordMetadata() (md RecordMetadata, ok bool)
	// TaskID returns the task this processor instance belongs to.
	TaskID() TaskID
	// ApplicationID returns the application id.
	ApplicationID() string
	// StreamTime returns the task's stream time (epoch ms; -1 before the
	// first record).
	StreamTime() int64
	// WallClockTime returns the task's wall clock (epoch ms): real time
	// in the runtime, the driver's mock time in tests.
	WallClockTime() int64
	// Store returns the raw state store connected to this processor by
	// name (see AddStateStore and KeyValueStoreOf for typed access).
	Store(name string) (*StoreHandle, error)
	// Commit asks the runtime to commit the task soon.
	Commit()
	// Logger returns the task's logger.
	Logger() *slog.Logger
}
