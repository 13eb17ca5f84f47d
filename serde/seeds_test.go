package serde

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// seedCorpus lists the checked-in seed inputs of each fuzz target. With
// EDDY_WRITE_SEEDS=1, TestSeedCorpus (re)writes them under
// testdata/fuzz/<target>/; otherwise it checks the files are present and
// up to date, so the corpus cannot drift from this list.
var seedCorpus = map[string][][]byte{
	"FuzzInt64":   {{0, 0, 0, 0, 0, 0, 0, 1}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x80, 0, 0, 0, 0, 0, 0, 0}, {1, 2, 3}, {}},
	"FuzzInt32":   {{0, 0, 0, 1}, {0xff, 0xff, 0xff, 0xff}, {0x7f, 0xff, 0xff, 0xff}, {1, 2, 3, 4, 5}, {}},
	"FuzzInt16":   {{0, 1}, {0xff, 0xff}, {0x80, 0}, {1}, {}},
	"FuzzFloat64": {{0x3f, 0xf0, 0, 0, 0, 0, 0, 0}, {0x7f, 0xf8, 0, 0, 0, 0, 0, 1}, {0xff, 0xf0, 0, 0, 0, 0, 0, 0}, {0x3f}, {}},
	"FuzzFloat32": {{0x3f, 0x80, 0, 0}, {0x7f, 0xc0, 0, 1}, {0, 0, 0, 1}, {0x3f, 0x80}, {}},
	"FuzzString":  {[]byte("hello"), []byte("héllo"), {0xff, 0xfe}, {}},
	"FuzzJSON": {
		[]byte(`{"s":"a","i":1,"f":1.5,"b":"AQI=","l":[{"s":"b"}],"m":{"x":2},"p":{"i":-1},"any":[1,"x",null,{"k":true}]}`),
		[]byte(`{"i":1e3}`), []byte(`{"s":"\u00e9\ud83d\ude00"}`), []byte(`{} {}`), []byte(`[`), []byte(`null`), []byte(` {"m":null} `),
	},
	"FuzzGoka": {
		[]byte("42"), []byte("-9223372036854775808"), []byte("+07"), []byte("9223372036854775808"), []byte("x"), []byte("{\"user\":\"u1\",\"count\":3}"), []byte("{\"count\":1e3}"), []byte("{"), []byte("null"), []byte("\x00\x00\x00\x00\x00\x00\x00*"), []byte("\xff\xff\xff\xff\xff\xff\xff\xff"), []byte(""),
	},
	"FuzzMsgpack": {
		{0x81, 0xa1, 's', 0xa1, 'a'},
		{0x82, 0xa1, 'i', 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xa1, 'l', 0x91, 0x81, 0xa1, 'f', 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0},
		{0x81, 0xa3, 'a', 'n', 'y', 0x93, 0x01, 0xc0, 0xd6, 0xff, 0, 0, 0, 1},
		{0x81, 0xa1, 'b', 0xc4, 0x02, 1, 2},
		{0x81, 0xa1, 'm', 0x81, 0xa1, 'x', 0xca, 0x3f, 0x80, 0, 0},
		{0xdd, 0x7f, 0xff, 0xff, 0xff},
		{0xdf, 0xff, 0xff, 0xff, 0xff},
		{0x91, 0x91, 0x91, 0x91, 0x90},
		{0x80, 0xc0},
		{0xc1},
	},
}

func TestSeedCorpus(t *testing.T) {
	write := os.Getenv("EDDY_WRITE_SEEDS") == "1"
	for target, seeds := range seedCorpus {
		dir := filepath.Join("testdata", "fuzz", target)
		if write {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for i, seed := range seeds {
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(seed)))
			path := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
			if write {
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != want {
				t.Errorf("%s is missing or stale (rerun with EDDY_WRITE_SEEDS=1): %v", path, err)
			}
		}
	}
}
