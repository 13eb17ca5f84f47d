package serde

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxMsgpackDepth is the deepest nesting of arrays and maps Msgpack accepts.
const maxMsgpackDepth = 512

var errMsgpackTruncated = errors.New("msgpack: truncated value")

// scanMsgpack checks that b starts with one well-formed msgpack value whose
// declared lengths are all backed by bytes in b, nested at most
// maxMsgpackDepth deep, and returns its length. It runs without recursion or
// allocation proportional to declared lengths.
//
// The msgpack library allocates a slice of the declared element count before
// reading the elements (its allocation limit is not applied to slices in
// v5.4.1), so Msgpack runs this scan first: a value that passes declares at
// most len(b) elements in any array or map.
func scanMsgpack(b []byte) (int, error) {
	pos := 0
	pending := make([]int, 1, 16) // items still to read at each open level
	pending[0] = 1
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == 0 {
			pending = pending[:top]
			continue
		}
		pending[top]--
		if pos >= len(b) {
			return 0, errMsgpackTruncated
		}
		c := b[pos]
		pos++
		var (
			lenBytes int  // width of a big-endian length after the code
			fixed    int  // payload bytes known from the code alone
			extra    int  // bytes added to a read length (the ext type byte)
			kind     byte // 's' sized payload, 'a' array, 'm' map
			n        int  // length given by the code itself
		)
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f:
			kind, n = 'm', int(c&0x0f)
		case c <= 0x9f:
			kind, n = 'a', int(c&0x0f)
		case c <= 0xbf:
			kind, n = 's', int(c&0x1f)
		default:
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc1:
				return 0, fmt.Errorf("msgpack: reserved code 0xc1 at offset %d", pos-1)
			case 0xc4, 0xd9: // bin8, str8
				kind, lenBytes = 's', 1
			case 0xc5, 0xda: // bin16, str16
				kind, lenBytes = 's', 2
			case 0xc6, 0xdb: // bin32, str32
				kind, lenBytes = 's', 4
			case 0xc7: // ext8
				kind, lenBytes, extra = 's', 1, 1
			case 0xc8: // ext16
				kind, lenBytes, extra = 's', 2, 1
			case 0xc9: // ext32
				kind, lenBytes, extra = 's', 4, 1
			case 0xcc, 0xd0: // uint8, int8
				fixed = 1
			case 0xcd, 0xd1: // uint16, int16
				fixed = 2
			case 0xca, 0xce, 0xd2: // float32, uint32, int32
				fixed = 4
			case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
				fixed = 8
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16 plus type byte
				fixed = 1 + 1<<(c-0xd4)
			case 0xdc: // array16
				kind, lenBytes = 'a', 2
			case 0xdd: // array32
				kind, lenBytes = 'a', 4
			case 0xde: // map16
				kind, lenBytes = 'm', 2
			case 0xdf: // map32
				kind, lenBytes = 'm', 4
			}
		}
		if lenBytes > 0 {
			if len(b)-pos < lenBytes {
				return 0, errMsgpackTruncated
			}
			switch lenBytes {
			case 1:
				n = int(b[pos])
			case 2:
				n = int(binary.BigEndian.Uint16(b[pos:]))
			case 4:
				n = int(binary.BigEndian.Uint32(b[pos:]))
			}
			pos += lenBytes
		}
		rest := len(b) - pos
		switch kind {
		case 's':
			fixed = n + extra
		case 'a', 'm':
			items := n
			if kind == 'm' {
				items = 2 * n
			}
			// Every item takes at least one byte.
			if items > rest {
				return 0, errMsgpackTruncated
			}
			if items > 0 {
				if len(pending) > maxMsgpackDepth {
					return 0, fmt.Errorf("msgpack: nesting deeper than %d", maxMsgpackDepth)
				}
				pending = append(pending, items)
			}
		}
		if fixed > rest {
			return 0, errMsgpackTruncated
		}
		pos += fixed
	}
	return pos, nil
}
