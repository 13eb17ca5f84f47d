// Command wordcount is the classic streams example as an eddy worker: it
// reads lines of text from the topic text-lines, splits them into words
// and keeps a running count per word in the topic word-counts.
//
// Run without flags it starts an embedded broker, feeds a few lines and
// prints the counts:
//
//	go run ./examples/wordcount
//
// With --brokers it is a worker of the application "wordcount" (see
// --app-id) until SIGINT or SIGTERM; start several to share the work. See
// README.md and docs/examples.md.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode"

	"github.com/eddy-streams/eddy/examples/internal/exampleapp"
	"github.com/eddy-streams/eddy/serde"
	"github.com/eddy-streams/eddy/stream"
)

// The example's topics and store.
const (
	InputTopic  = "text-lines"
	OutputTopic = "word-counts"
	CountStore  = "counts"
)

// Words splits line on every character that is not a letter or a digit
// (Unicode) and lower-cases the words.
func Words(line string) []string {
	words := strings.FieldsFunc(line, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for i, w := range words {
		words[i] = strings.ToLower(w)
	}
	return words
}

// Topology builds the word count: text-lines (value: a UTF-8 line) →
// words → count per word → word-counts (key: the word, value: the count as
// an 8-byte big-endian int64).
func Topology() (*stream.Topology, error) {
	b := stream.NewBuilder()
	lines := stream.Stream(b, stream.With(serde.String(), serde.String()), InputTopic)
	words := stream.FlatMapValues(lines, func(_ string, line string) []string { return Words(line) })
	counts := stream.GroupBy(words, func(_ string, w string) string { return w },
		stream.Grouped[string, string]{Name: "words", Key: serde.String(), Value: serde.String()}).
		Count(stream.As[string, int64](CountStore))
	counts.ToStream().To(OutputTopic, stream.Produced[string, int64]{Key: serde.String(), Value: serde.Int64()})
	return b.Build()
}

// demoLines are the demo's input.
var demoLines = []string{
	"Hello Kafka Streams",
	"All streams lead to Kafka",
	"Join Kafka Summit",
	"eddy: Kafka-style streams, in Go!",
	"Grüße aus Köln; 東京 2024",
}

// Count counts the words of lines: the results word-counts converges to.
func Count(lines []string) map[string]int64 {
	m := map[string]int64{}
	for _, l := range lines {
		for _, w := range Words(l) {
			m[w]++
		}
	}
	return m
}

// Latest returns the latest count per word in records read from
// word-counts, in the order read (the last record of a key wins).
func Latest(recs []exampleapp.Record) map[string]int64 {
	m := map[string]int64{}
	for _, r := range recs {
		if r.Topic != OutputTopic || len(r.Value) != 8 {
			continue
		}
		m[string(r.Key)] = int64(binary.BigEndian.Uint64(r.Value))
	}
	return m
}

// example describes the wordcount example.
func example() exampleapp.Example {
	want := Count(demoLines)
	batch := make([]exampleapp.Record, len(demoLines))
	for i, l := range demoLines {
		batch[i] = exampleapp.Record{Topic: InputTopic, Value: []byte(l)}
	}
	return exampleapp.Example{
		Name:     "wordcount",
		Summary:  "count words of the lines in text-lines into word-counts",
		Topics:   []exampleapp.Topic{{Name: InputTopic, Partitions: 3}, {Name: OutputTopic, Partitions: 3}},
		Topology: Topology,
		Demo: exampleapp.Demo{
			Batches: [][]exampleapp.Record{batch},
			Outputs: []string{OutputTopic},
			Done: func(out []exampleapp.Record) bool {
				got := Latest(out)
				for w, n := range want {
					if got[w] != n {
						return false
					}
				}
				return true
			},
			Print: func(w io.Writer, out []exampleapp.Record) {
				fmt.Fprintf(w, "%s (%d lines):\n", InputTopic, len(demoLines))
				for _, l := range demoLines {
					fmt.Fprintf(w, "  %s\n", l)
				}
				got := Latest(out)
				words := make([]string, 0, len(got))
				for w := range got {
					words = append(words, w)
				}
				sort.Strings(words)
				fmt.Fprintf(w, "\n%s (latest count per word):\n", OutputTopic)
				for _, word := range words {
					fmt.Fprintf(w, "  %-10s %d\n", word, got[word])
				}
			},
		},
	}
}

func main() { exampleapp.Main(example()) }
