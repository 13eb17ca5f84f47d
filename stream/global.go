package stream

// globalSpec is one global table: a topic read in full by every worker
// into a global store (no changelog: the topic is its own changelog).
type globalSpec struct {
	sourceName, topic, procName, store string
}
