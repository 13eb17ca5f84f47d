package runtime

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// lateHandler serves the handler set after the server started (the App
// needs the server's address before the handler exists).
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := l.h.Load()
	if h == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	(*h).ServeHTTP(w, r)
}

// httpGet GETs url (with header ForwardedHeader when forwarded) and
// decodes the JSON answer into out (when non-nil).
func httpGet(t *testing.T, u string, forwarded bool, out any) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if forwarded {
		req.Header.Set(ForwardedHeader, "1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q, body %s", u, ct, body)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v in %s", u, err, body)
		}
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
			t.Fatalf("GET %s: %d without a JSON error: %s", u, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, resp.Header
}

// count decodes an int64 count from a query entry.
func count(t *testing.T, e QueryEntry) int64 {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(e.ValueBase64)
	if err != nil || len(b) != 8 {
		t.Fatalf("value %q: %v", e.ValueBase64, err)
	}
	return int64(binary.BigEndian.Uint64(b))
}

func TestHTTPQueries(t *testing.T) {
	brokers := backends[0].start(t) // eddy
	createTopics(t, brokers, 4, "text-lines", "word-counts")
	top := wordcount(t)

	type worker struct {
		srv  *httptest.Server
		app  *running
		addr string
	}
	var ws [2]worker
	for i := range ws {
		lh := &lateHandler{}
		srv := httptest.NewServer(lh)
		t.Cleanup(srv.Close)
		addr := strings.TrimPrefix(srv.URL, "http://")
		cfg := testConfig(t, "http-queries", brokers)
		cfg.ApplicationServer = addr
		r := start(t, top, cfg)
		h := r.QueryHandler()
		lh.h.Store(&h)
		ws[i] = worker{srv: srv, app: r, addr: addr}
	}
	for _, w := range ws {
		w.app.waitRunning(t)
	}

	// Both workers hold tasks of "counts", as /stores tells.
	type storesAnswer struct {
		Host   string
		Stores []struct {
			Name     string
			Global   bool
			Complete bool
			Hosts    []struct {
				Host       string
				Tasks      []string
				Partitions []int32
			}
		}
	}
	eventually(t, 20*time.Second, "both workers own tasks of counts", func() bool {
		var sa storesAnswer
		if code, _ := httpGet(t, ws[0].srv.URL+"/stores", false, &sa); code != http.StatusOK {
			return false
		}
		if sa.Host != ws[0].addr || len(sa.Stores) != 1 || sa.Stores[0].Name != "counts" {
			t.Fatalf("/stores = %+v", sa)
		}
		s := sa.Stores[0]
		parts := 0
		for _, h := range s.Hosts {
			parts += len(h.Partitions)
		}
		return s.Complete && len(s.Hosts) == 2 && parts == 4
	})

	want := map[string]int64{}
	produce(t, brokers, "text-lines", lines(0, 40, want)...)

	// Every key from either worker; some answers are local, some forwarded.
	local, forwarded := 0, 0
	for _, w := range ws {
		for word, n := range want {
			var e QueryEntry
			eventually(t, 20*time.Second, fmt.Sprintf("%s from %s", word, w.addr), func() bool {
				e = QueryEntry{}
				code, _ := httpGet(t, w.srv.URL+"/stores/counts/keys/"+url.PathEscape(word), false, &e)
				return code == http.StatusOK && count(t, e) == n
			})
			if e.Key == nil || *e.Key != word || e.Value != nil {
				t.Errorf("key %v, value %v: want %q and no text value", e.Key, e.Value, word)
			}
			owner, err := w.app.KeyOwner("counts", []byte(word))
			if err != nil {
				t.Fatal(err)
			}
			if e.Host != owner.String() {
				t.Errorf("%s answered by %s, owner %s", word, e.Host, owner)
			}
			if e.Host == w.addr {
				local++
			} else {
				forwarded++
			}
			// The same by base64 key.
			var eb QueryEntry
			if code, _ := httpGet(t, w.srv.URL+"/stores/counts/keys?key_base64="+url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(word))), false, &eb); code != http.StatusOK || count(t, eb) != n {
				t.Errorf("key_base64 %s: %d %+v", word, code, eb)
			}
		}
	}
	t.Logf("local answers %d, forwarded %d", local, forwarded)
	if local == 0 || forwarded == 0 {
		t.Errorf("local answers %d, forwarded %d: want both", local, forwarded)
	}

	// A forwarded request to a worker that does not own the key: 503, not
	// forwarded again.
	checked := false
	for word := range want {
		owner, err := ws[0].app.KeyOwner("counts", []byte(word))
		if err != nil {
			t.Fatal(err)
		}
		other := ws[0]
		if owner.String() == ws[0].addr {
			other = ws[1]
		}
		code, hdr := httpGet(t, other.srv.URL+"/stores/counts/keys/"+url.PathEscape(word), true, nil)
		if code != http.StatusServiceUnavailable || hdr.Get(ForwardedHeader) != "" {
			t.Errorf("forwarded %s to non-owner %s: %d (forwarded to %q)", word, other.addr, code, hdr.Get(ForwardedHeader))
		}
		checked = true
		break
	}
	if !checked {
		t.Fatal("no key")
	}

	// Unknown key and store.
	for _, w := range ws {
		for i := range 4 {
			k := fmt.Sprintf("nosuchword%d", i)
			if code, _ := httpGet(t, w.srv.URL+"/stores/counts/keys/"+k, false, nil); code != http.StatusNotFound {
				t.Errorf("unknown key %s from %s: %d", k, w.addr, code)
			}
		}
		if code, _ := httpGet(t, w.srv.URL+"/stores/nope/keys/x", false, nil); code != http.StatusNotFound {
			t.Errorf("unknown store: %d", code)
		}
		if code, _ := httpGet(t, w.srv.URL+"/stores/counts/keys/x?key_base64=eA==", false, nil); code != http.StatusBadRequest {
			t.Errorf("key twice: %d", code)
		}
	}

	// scope=all returns every key from either worker; the local scope
	// only this worker's.
	localTotal := 0
	for _, w := range ws {
		var all queryEntries
		if code, _ := httpGet(t, w.srv.URL+"/stores/counts/all?scope=all", false, &all); code != http.StatusOK {
			t.Fatalf("scope=all: %d", code)
		}
		got := map[string]int64{}
		hosts := map[string]bool{}
		for i, e := range all.Entries {
			got[*e.Key] = count(t, e)
			hosts[e.Host] = true
			if i > 0 && *all.Entries[i-1].Key >= *e.Key {
				t.Errorf("scope=all not sorted: %q then %q", *all.Entries[i-1].Key, *e.Key)
			}
		}
		if !equalCounts(got, want) || all.Truncated || len(hosts) != 2 {
			t.Errorf("scope=all from %s = %v (hosts %v, truncated %v), want %v", w.addr, got, hosts, all.Truncated, want)
		}
		var mine queryEntries
		if code, _ := httpGet(t, w.srv.URL+"/stores/counts/all", false, &mine); code != http.StatusOK {
			t.Fatalf("local all: %d", code)
		}
		localTotal += len(mine.Entries)
		for _, e := range mine.Entries {
			if e.Host != w.addr {
				t.Errorf("local entry %s from host %s", *e.Key, e.Host)
			}
		}
		// A range over both workers, and a limit.
		var rg queryEntries
		if code, _ := httpGet(t, w.srv.URL+"/stores/counts/range?scope=all&from=e&to=j", false, &rg); code != http.StatusOK {
			t.Fatalf("range: %d", code)
		}
		wantRange := map[string]int64{}
		for k, n := range want {
			if k >= "e" && k <= "j" {
				wantRange[k] = n
			}
		}
		gotRange := map[string]int64{}
		for _, e := range rg.Entries {
			gotRange[*e.Key] = count(t, e)
		}
		if !equalCounts(gotRange, wantRange) {
			t.Errorf("range [e, j] = %v, want %v", gotRange, wantRange)
		}
		var lim queryEntries
		if code, _ := httpGet(t, w.srv.URL+"/stores/counts/all?scope=all&limit=2", false, &lim); code != http.StatusOK || len(lim.Entries) != 2 || !lim.Truncated {
			t.Errorf("limit=2: %d %+v", code, lim)
		}
	}
	if localTotal != len(want) {
		t.Errorf("local entries of both workers: %d, want %d", localTotal, len(want))
	}
	if code, _ := httpGet(t, ws[0].srv.URL+"/stores/counts/all?scope=everywhere", false, nil); code != http.StatusBadRequest {
		t.Errorf("bad scope: %d", code)
	}
	resp, err := http.Post(ws[0].srv.URL+"/stores/counts/all", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

// Before Run, the owner of a key is unknown: 503 with Retry-After.
func TestHTTPNotRunning(t *testing.T) {
	cfg := DefaultConfig("http-idle", "127.0.0.1:1")
	cfg.StateDir = t.TempDir()
	cfg.ApplicationServer = "127.0.0.1:1"
	a, err := New(wordcount(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.QueryHandler())
	defer srv.Close()
	code, hdr := httpGet(t, srv.URL+"/stores/counts/keys/kafka", false, nil)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("key before Run: %d, Retry-After %q", code, hdr.Get("Retry-After"))
	}
	if code, hdr = httpGet(t, srv.URL+"/stores/counts/all?scope=all", false, nil); code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("scope=all before Run: %d", code)
	}
	if code, _ = httpGet(t, srv.URL+"/nothing", false, nil); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
}

func TestHTTPEntryText(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want string
		text bool
	}{
		{[]byte("héllo\tworld\n"), "héllo\tworld\n", true},
		{[]byte{}, "", true},
		{[]byte{0, 0, 0, 0, 0, 0, 0, 5}, "", false}, // an int64
		{[]byte{0xff, 'a'}, "", false},              // not UTF-8
	} {
		e := entry(c.in, c.in, "h:1")
		if (e.Value != nil) != c.text || (c.text && *e.Value != c.want) || (e.Key != nil) != c.text {
			t.Errorf("entry(%q): key %v, value %v", c.in, e.Key, e.Value)
		}
		if b, err := base64.StdEncoding.DecodeString(e.ValueBase64); err != nil || string(b) != string(c.in) || e.KeyBase64 != e.ValueBase64 || e.Host != "h:1" {
			t.Errorf("entry(%q) = %+v", c.in, e)
		}
	}
}
