package main

import (
	"strings"
	"testing"
)

func TestTopicLifecycle(t *testing.T) {
	name := newTopic(t)
	out := mustRun(t, "", "topic", "create", name, "-p", "3", "-c", "retention.ms=12345")
	if !strings.Contains(out, "created topic "+name+" (3 partitions)") {
		t.Fatalf("create output: %q", out)
	}
	if _, _, err := run(t, "", "topic", "create", name); err == nil || !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
		t.Fatalf("creating twice: err = %v, want TOPIC_ALREADY_EXISTS", err)
	}
	out = mustRun(t, "", "topic", "list")
	if !containsLine(out, name, "3") {
		t.Fatalf("list does not show %s with 3 partitions:\n%s", name, out)
	}

	mustRun(t, "a\nb\nc\nd\n", "produce", name, "--partition", "1")
	out = mustRun(t, "", "topic", "describe", name)
	for _, want := range []string{"PARTITIONS  3", "retention.ms", "12345"} {
		if !strings.Contains(out, want) {
			t.Fatalf("describe lacks %q:\n%s", want, out)
		}
	}
	// partition 1: log start 0, high watermark 4, 4 records.
	if !containsLine(out, "1", "0", "0", "[0]", "[0]", "0", "4", "4") {
		t.Fatalf("describe partition 1 offsets wrong:\n%s", out)
	}

	mustRun(t, "", "topic", "alter-config", name, "--set", "cleanup.policy=compact", "--delete", "retention.ms")
	out = mustRun(t, "", "topic", "describe", name)
	if !strings.Contains(out, "cleanup.policy") || !strings.Contains(out, "compact") {
		t.Fatalf("alter-config --set not visible:\n%s", out)
	}
	if strings.Contains(out, "12345") {
		t.Fatalf("alter-config --delete not applied:\n%s", out)
	}
	if _, _, err := run(t, "", "topic", "alter-config", name); err == nil {
		t.Fatal("alter-config without changes succeeded")
	}

	out = mustRun(t, "", "topic", "delete", name)
	if !strings.Contains(out, "deleted topic "+name) {
		t.Fatalf("delete output: %q", out)
	}
	if out := mustRun(t, "", "topic", "list"); strings.Contains(out, name) {
		t.Fatalf("deleted topic still listed:\n%s", out)
	}
	if _, _, err := run(t, "", "topic", "delete", name); err == nil {
		t.Fatal("deleting a missing topic succeeded")
	}
}

// containsLine reports whether some line of out has all fields, in order,
// as whitespace-separated columns (starting at its first column).
func containsLine(out string, fields ...string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		cols := strings.Fields(line)
		if len(cols) < len(fields) {
			continue
		}
		match := true
		for i, f := range fields {
			if cols[i] != f {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}
