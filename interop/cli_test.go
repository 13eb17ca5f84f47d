package interop

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eddy-streams/eddy/internal/testbin"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
)

func TestMain(m *testing.M) {
	if os.Getenv(txnMemberEnv) != "" {
		// A member process of TestFranzGroupTransactSession.
		os.Exit(txnMemberMain())
	}
	testbin.Main(m, "eddy-interop-bin-")
}

// eddyCLI returns the eddy binary, built once per test binary.
func eddyCLI(t *testing.T) string { return testbin.Eddy(t) }

// TestCLIAgainstKfake drives franz-go's kfake — not eddy's broker — with
// the eddy CLI, which proves the CLI is a plain Kafka client.
func TestCLIAgainstKfake(t *testing.T) {
	eddy := eddyCLI(t)
	kf, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kf.Close()
	addr := kf.ListenAddrs()[0]
	run := func(stdin []byte, args ...string) []byte {
		t.Helper()
		return runCmd(t, 60*time.Second, stdin, eddy, append([]string{"--brokers", addr}, args...)...)
	}

	topic := topicName(t)
	run(nil, "topic", "create", topic, "--partitions", "3")
	md, err := kadm.NewClient(newClient(t, addr)).Metadata(testCtx(t, 10*time.Second), topic)
	if err != nil {
		t.Fatal(err)
	}
	if td := md.Topics[topic]; td.Err != nil || len(td.Partitions) != 3 {
		t.Fatalf("after eddy topic create: %+v", td)
	}
	if out := run(nil, "topic", "list"); !bytes.Contains(out, []byte(topic)) {
		t.Fatalf("eddy topic list does not show %s:\n%s", topic, out)
	}

	want := testRecords("cli", 200)
	var in bytes.Buffer
	for _, r := range want {
		fmt.Fprintf(&in, "%s:%s\n", r.Key, r.Value)
	}
	run(in.Bytes(), "produce", topic, "--key-delim", ":")
	stored := consumeAll(t, addr, topic, len(want))
	checkOffsetsContiguous(t, stored)
	checkSameValues(t, stored, want, false)

	out := run(nil, "consume", topic, "--offset", "start", "--count", strconv.Itoa(len(want)),
		"--format", `%p %o %k %v\n`)
	checkSameRecords(t, parseKcat(t, out), stored)

	group := "g-" + topic
	out = run(nil, "consume", topic, "--group", group, "--count", strconv.Itoa(len(want)),
		"--format", `%p %o %k %v\n`)
	checkSameRecords(t, parseKcat(t, out), stored)
	waitCommittedAtEnd(t, addr, group, topic)
	if out := run(nil, "group", "list"); !strings.Contains(string(out), group) {
		t.Fatalf("eddy group list does not show %s:\n%s", group, out)
	}
}
