package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordFormat is a compiled kcat-like --format string.
//
//	%k key    %v value   %p partition   %o offset
//	%t topic  %T timestamp (Unix ms)    %h headers (k=v,k=v)
//	%K key length   %S value length     %% a literal %
//	\n newline  \t tab  \r carriage return  \\ backslash
type recordFormat []fmtPart

type fmtPart struct {
	lit  string // literal text when verb == 0
	verb byte
}

// parseFormat compiles a --format string.
func parseFormat(s string) (recordFormat, error) {
	var (
		f   recordFormat
		lit strings.Builder
	)
	flush := func() {
		if lit.Len() > 0 {
			f = append(f, fmtPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("format %q: dangling %%", s)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit.WriteByte('%')
			case 'k', 'v', 'p', 'o', 't', 'T', 'h', 'K', 'S':
				flush()
				f = append(f, fmtPart{verb: v})
			default:
				return nil, fmt.Errorf("format %q: unknown verb %%%c", s, v)
			}
		case '\\':
			if i+1 >= len(s) {
				lit.WriteByte('\\')
				continue
			}
			i++
			switch e := s[i]; e {
			case 'n':
				lit.WriteByte('\n')
			case 't':
				lit.WriteByte('\t')
			case 'r':
				lit.WriteByte('\r')
			case '\\':
				lit.WriteByte('\\')
			default:
				lit.WriteByte('\\')
				lit.WriteByte(e)
			}
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return f, nil
}

// append formats r onto dst.
func (f recordFormat) append(dst []byte, r *kgo.Record) []byte {
	for _, p := range f {
		switch p.verb {
		case 0:
			dst = append(dst, p.lit...)
		case 'k':
			dst = append(dst, r.Key...)
		case 'v':
			dst = append(dst, r.Value...)
		case 'p':
			dst = strconv.AppendInt(dst, int64(r.Partition), 10)
		case 'o':
			dst = strconv.AppendInt(dst, r.Offset, 10)
		case 't':
			dst = append(dst, r.Topic...)
		case 'T':
			dst = strconv.AppendInt(dst, r.Timestamp.UnixMilli(), 10)
		case 'K':
			dst = strconv.AppendInt(dst, int64(len(r.Key)), 10)
		case 'S':
			dst = strconv.AppendInt(dst, int64(len(r.Value)), 10)
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, h.Key...)
				dst = append(dst, '=')
				dst = append(dst, h.Value...)
			}
		}
	}
	return dst
}
