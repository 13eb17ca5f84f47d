package coordkey

import "testing"

func TestPartition(t *testing.T) {
	for _, tc := range []struct {
		key  string
		n    int
		want int32
	}{
		{"", 50, 0},
		{"a", 50, 97 % 50},
		{"group", 50, 98629247 % 50},  // "group".hashCode() == 98629247
		{"polygenelubricants", 50, 0}, // hashCode == MinInt32: Kafka's abs gives 0
		{"é", 7, 233 % 7},
		{"😀", 50, (55357*31 + 56832) % 50}, // a surrogate pair hashes as two code units
	} {
		if got := Partition(tc.key, tc.n); got != tc.want {
			t.Errorf("Partition(%q, %d) = %d, want %d", tc.key, tc.n, got, tc.want)
		}
	}
}
