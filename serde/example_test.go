package serde_test

import (
	"errors"
	"fmt"

	"github.com/eddy-streams/eddy/serde"
)

// The number serdes write Kafka's layouts, so a Java consumer using
// LongDeserializer reads the same values.
func ExampleInt64() {
	s := serde.Int64()
	b, _ := s.Serialize("counts", 1)
	fmt.Printf("% x\n", b)
	b, _ = s.Serialize("counts", -1)
	fmt.Printf("% x\n", b)

	_, err := s.Deserialize("counts", []byte{1, 2, 3})
	fmt.Println(errors.Is(err, serde.ErrBadLength))
	// Output:
	// 00 00 00 00 00 00 00 01
	// ff ff ff ff ff ff ff ff
	// true
}

// A nil []byte is Kafka's null, a tombstone: plain serdes report it as
// ErrNull, and Nullable turns it into a nil pointer.
func ExampleNullable() {
	_, err := serde.String().Deserialize("users", nil)
	fmt.Println(errors.Is(err, serde.ErrNull))

	s := serde.Nullable(serde.String())
	v, err := s.Deserialize("users", nil)
	fmt.Println(v == nil, err)
	b, _ := s.Serialize("users", nil)
	fmt.Println(b == nil)
	// Output:
	// true
	// true <nil>
	// true
}

func ExampleJSON() {
	type PageView struct {
		User string `json:"user"`
		Page string `json:"page"`
	}
	s := serde.JSON[PageView]()
	b, _ := s.Serialize("pageviews", PageView{User: "ann", Page: "/home"})
	fmt.Println(string(b))

	v, _ := s.Deserialize("pageviews", b)
	fmt.Println(v.User, v.Page)

	_, err := s.Deserialize("pageviews", []byte(`{"user":"bo"} trailing`))
	fmt.Println(err != nil)
	// Output:
	// {"user":"ann","page":"/home"}
	// ann /home
	// true
}

func ExampleMsgpack() {
	type PageView struct {
		User string `msgpack:"user"`
	}
	s := serde.Msgpack[PageView]()
	b, _ := s.Serialize("pageviews", PageView{User: "ann"})
	fmt.Printf("% x\n", b)
	v, _ := s.Deserialize("pageviews", b)
	fmt.Println(v.User)
	// Output:
	// 81 a4 75 73 65 72 a3 61 6e 6e
	// ann
}

// Func builds a serde from two functions; here a one-byte boolean.
func ExampleFunc() {
	boolean := serde.Func(
		func(_ string, v bool) ([]byte, error) {
			if v {
				return []byte{1}, nil
			}
			return []byte{0}, nil
		},
		func(_ string, b []byte) (bool, error) {
			if len(b) != 1 || b[0] > 1 {
				return false, fmt.Errorf("bool: bad data % x", b)
			}
			return b[0] == 1, nil
		})
	b, _ := boolean.Serialize("flags", true)
	v, _ := boolean.Deserialize("flags", b)
	fmt.Println(b, v)
	// Output:
	// [1] true
}
