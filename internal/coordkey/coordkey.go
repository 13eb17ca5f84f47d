// Package coordkey maps a coordinator key (a consumer group id or a
// transactional id) to the partition of the internal topic that holds its
// state, exactly as Kafka does, so that tools reading __consumer_offsets or
// __transaction_state find each key where Kafka would put it.
package coordkey

import (
	"math"
	"unicode/utf16"
)

// Partition returns abs(key.hashCode()) % partitions, with Java's
// String.hashCode over the key's UTF-16 code units and Kafka's Utils.abs,
// which maps math.MinInt32 to 0. partitions must be positive.
func Partition(key string, partitions int) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(key)) {
		h = 31*h + int32(u)
	}
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % int32(partitions)
}
