package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestGroupCommitDescribeReset(t *testing.T) {
	topic, group := newTopic(t), newTopic(t)+"-g"
	mustRun(t, "", "topic", "create", topic, "-p", "1")
	var in strings.Builder
	for i := range 10 {
		fmt.Fprintf(&in, "v%d\n", i)
	}
	mustRun(t, in.String(), "produce", topic)

	// A group consumer commits what it printed: 3 records → offset 3.
	if out := mustRun(t, "", "consume", topic, "-G", group, "-c", "3"); out != "v0\nv1\nv2\n" {
		t.Fatalf("group consume: %q", out)
	}
	out := mustRun(t, "", "group", "describe", group)
	if !containsLine(out, topic, "0", "3", "0", "10", "7") {
		t.Fatalf("describe does not show committed 3, end 10, lag 7:\n%s", out)
	}
	if !strings.Contains(out, "TOTAL-LAG    7") {
		t.Fatalf("describe total lag:\n%s", out)
	}
	// The next group member resumes from the commit; -e stops at the end.
	if out := mustRun(t, "", "consume", topic, "-G", group, "-c", "2", "-e"); out != "v3\nv4\n" {
		t.Fatalf("resumed group consume: %q", out)
	}
	waitGroupEmpty(t, group)

	if out := mustRun(t, "", "group", "list"); !strings.Contains(out, group) {
		t.Fatalf("group list lacks %s:\n%s", group, out)
	}

	// Dry run shows, changes nothing.
	out = mustRun(t, "", "group", "reset-offsets", group, "--topic", topic, "--to-earliest")
	if !containsLine(out, group, topic, "0", "5", "0") || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run output:\n%s", out)
	}
	if out := mustRun(t, "", "group", "describe", group); !containsLine(out, topic, "0", "5") {
		t.Fatalf("dry run changed offsets:\n%s", out)
	}
	resets := []struct {
		args []string
		want string
	}{
		{[]string{"--to-earliest"}, "0"},
		{[]string{"--to-latest"}, "10"},
		{[]string{"--to-offset", "4"}, "4"},
		{[]string{"--shift-by", "-3"}, "1"},
		{[]string{"--shift-by", "-30"}, "0"},  // clamped to log start
		{[]string{"--to-offset", "99"}, "10"}, // clamped to log end
		{[]string{"--to-datetime", fmt.Sprint(time.Now().Add(-time.Hour).UnixMilli())}, "0"},
		{[]string{"--to-datetime", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "10"},
	}
	for _, r := range resets {
		args := append([]string{"group", "reset-offsets", group, "--topic", topic + ":0", "--execute"}, r.args...)
		mustRun(t, "", args...)
		if out := mustRun(t, "", "group", "describe", group); !containsLine(out, topic, "0", r.want) {
			t.Fatalf("after reset %v want committed %s:\n%s", r.args, r.want, out)
		}
	}
	for _, bad := range [][]string{
		{"--to-earliest", "--to-latest"},
		{},
		{"--to-datetime", "yesterday"},
	} {
		args := append([]string{"group", "reset-offsets", group, "--topic", topic}, bad...)
		if _, _, err := run(t, "", args...); err == nil {
			t.Errorf("reset-offsets %v accepted", bad)
		}
	}
	if _, _, err := run(t, "", "group", "reset-offsets", group, "--to-earliest"); err == nil {
		t.Error("reset-offsets without --topic accepted")
	}

	mustRun(t, "", "group", "reset-offsets", group, "--topic", topic, "--to-offset", "8", "--execute")
	if out := mustRun(t, "", "consume", topic, "-G", group, "-e"); out != "v8\nv9\n" {
		t.Fatalf("consume after reset: %q", out)
	}
	waitGroupEmpty(t, group)
	if out := mustRun(t, "", "group", "delete", group); !strings.Contains(out, "deleted group "+group) {
		t.Fatalf("delete: %q", out)
	}
	if out := mustRun(t, "", "group", "list"); strings.Contains(out, group) {
		t.Fatalf("deleted group still listed:\n%s", out)
	}
}

// waitGroupEmpty polls until the group has no members (a leaving consumer's
// LeaveGroup is processed asynchronously by the coordinator).
func waitGroupEmpty(t *testing.T, group string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := mustRun(t, "", "group", "describe", group)
		if strings.Contains(out, "MEMBERS      0") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s still has members:\n%s", group, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestResetRefusesActiveGroup checks that offsets of a group with live
// members are not reset, as Kafka's tool refuses to.
func TestResetRefusesActiveGroup(t *testing.T) {
	topic, group := newTopic(t), newTopic(t)+"-g"
	mustRun(t, "", "topic", "create", topic, "-p", "1")
	mustRun(t, "x\n", "produce", topic)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := runCtx(ctx, "", "consume", topic, "-G", group)
		done <- err
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("group consumer: %v", err)
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _, _ := run(t, "", "group", "describe", group)
		if strings.Contains(out, "MEMBERS      1") && strings.Contains(out, "Stable") {
			if !containsLine(out, "MEMBER-ID", "INSTANCE-ID") || !strings.Contains(out, topic+"[0]") {
				t.Fatalf("describe of an active group lacks members or assignments:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group never became stable:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, _, err := run(t, "", "group", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
	if err == nil || !strings.Contains(err.Error(), "stop its consumers") {
		t.Fatalf("reset of an active group: err = %v", err)
	}
}

func TestGroupErrors(t *testing.T) {
	for _, args := range [][]string{
		{"group", "describe", "no-such-group"},
		{"group", "delete", "no-such-group"},
		{"--log-level", "loud", "group", "list"},
	} {
		if _, _, err := run(t, "", args...); err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
}
