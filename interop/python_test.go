package interop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pyClients are the python clients driven through testdata/pyclient.py.
var pyClients = []struct {
	name, module, compression string
	codec                     int8
	idempotence               bool // the script can produce idempotently
}{
	{"confluent", "confluent_kafka", "lz4", 3, true},
	{"kafka-python", "kafka", "gzip", 1, false},
}

func parseJSONRecs(t *testing.T, out []byte) []rec {
	t.Helper()
	var rs []rec
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r rec
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad output line %q: %v", sc.Text(), err)
		}
		rs = append(rs, r)
	}
	return rs
}

// TestPythonClients produces with each python client (acks=all, with
// compression), then consumes as a group member with it, and checks both
// against franz-go's view of the log and the group's committed offsets.
func TestPythonClients(t *testing.T) {
	c := startCluster(t)
	for _, pc := range pyClients {
		t.Run(pc.name, func(t *testing.T) {
			py := pythonWith(t, pc.module)
			const partitions = 3
			topic := createTopic(t, c.Addr(), partitions, nil)
			want := testRecords("py"+pc.name, 300)
			var in bytes.Buffer
			for _, r := range want {
				fmt.Fprintf(&in, "%s\t%s\n", r.Key, r.Value)
			}
			out := runCmd(t, 90*time.Second, in.Bytes(), py, "testdata/pyclient.py", pc.name, "produce",
				"--brokers", c.Addr(), "--topic", topic, "--compression", pc.compression)
			if pc.idempotence {
				t.Run("idempotent", func(t *testing.T) {
					requireIdempotence(t, c.Addr())
					topic := createTopic(t, c.Addr(), partitions, nil)
					out := runCmd(t, 90*time.Second, in.Bytes(), py, "testdata/pyclient.py", pc.name, "produce",
						"--brokers", c.Addr(), "--topic", topic, "--compression", pc.compression, "--idempotent")
					acked := parseJSONRecs(t, out)
					checkOffsetsContiguous(t, acked)
					checkSameValues(t, acked, want, false)
					checkSameRecords(t, consumeAll(t, c.Addr(), topic, len(want)), acked)
				})
			}
			acked := parseJSONRecs(t, out)
			if len(acked) != len(want) {
				t.Fatalf("%s acknowledged %d of %d records", pc.name, len(acked), len(want))
			}
			checkSameValues(t, acked, want, false)
			checkOffsetsContiguous(t, acked)
			checkSameRecords(t, consumeAll(t, c.Addr(), topic, len(want)), acked)
			for i, s := range storedCodecs(t, c.Addr(), topic, partitions) {
				if s != pc.codec {
					t.Fatalf("stored batch %d has codec %d, %s produced with %s", i, s, pc.name, pc.compression)
				}
			}

			// Group consume: the records franz-go wrote plus those above.
			more := produceFranz(t, c.Addr(), topic, testRecords("py-franz"+pc.name, 60),
				kgo.ProducerBatchCompression(kgo.GzipCompression())) // kafka-python lacks snappy here
			all := append(append([]rec(nil), acked...), more...)
			group := "g-" + topic
			out = runCmd(t, 90*time.Second, nil, py, "testdata/pyclient.py", pc.name, "consume",
				"--brokers", c.Addr(), "--topic", topic, "--group", group, "--count", strconv.Itoa(len(all)))
			checkSameRecords(t, parseJSONRecs(t, out), all)
			waitCommittedAtEnd(t, c.Addr(), group, topic)
		})
	}
}
