package runtime

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eddy-streams/eddy/stream"
)

// ForwardedHeader marks a query one worker forwarded to another (by
// QueryHandler): a worker never forwards such a request again, so a stale
// assignment cannot make two workers bounce a query between them.
const ForwardedHeader = "X-Eddy-Forwarded"

// Limits of the query handler.
const (
	// queryTimeout bounds a forwarded request (and each request of a
	// fan-out) to another worker.
	queryTimeout = 5 * time.Second
	// defaultQueryLimit and maxQueryLimit bound the entries of one
	// /all or /range answer (?limit=).
	defaultQueryLimit = 10000
	maxQueryLimit     = 1000000
	// maxPeerBody bounds the body read from another worker.
	maxPeerBody = 256 << 20
	// maxRequestBody bounds what is read of a request's body (queries
	// have none).
	maxRequestBody = 4 << 10
	// retryAfter is the Retry-After (seconds) of a 503 while the
	// assignment is unknown.
	retryAfter = "1"
)

// StoreHost is a worker that holds active tasks of a store, as the
// assignment metadata says: its ApplicationServer and those tasks.
type StoreHost struct {
	Host  HostInfo
	Tasks []stream.TaskID
}

// StoreHosts returns, for store, the workers (with an ApplicationServer)
// whose active tasks hold it, sorted by address, with their tasks of that
// store in order; complete reports whether every task of the store has a
// host in the metadata (false before the first assignment, or when a
// worker without ApplicationServer holds some). A global store is held in
// full by every worker: the answer is this worker alone (none without an
// ApplicationServer), complete.
func (a *App) StoreHosts(store string) (hosts []StoreHost, complete bool, err error) {
	if _, ok := a.plan.globalStore[store]; ok {
		if a.cfg.ApplicationServer == "" {
			return nil, true, nil
		}
		h, err := parseHost(a.cfg.ApplicationServer)
		if err != nil {
			return nil, false, err
		}
		return []StoreHost{{Host: h}}, true, nil
	}
	sub, ok := a.plan.storeSub[store]
	if !ok {
		return nil, false, fmt.Errorf("%w %q", ErrUnknownStore, store)
	}
	a.mu.Lock()
	n := a.taskCounts[sub]
	a.mu.Unlock()
	covered := map[int32]bool{}
	a.hostsMu.RLock()
	for host, ids := range a.hosts {
		var mine []stream.TaskID
		for _, id := range ids {
			if id.Subtopology == sub {
				mine = append(mine, id)
				covered[id.Partition] = true
			}
		}
		if len(mine) == 0 {
			continue
		}
		h, err := parseHost(host)
		if err != nil {
			continue
		}
		slices.SortFunc(mine, compareTasks)
		hosts = append(hosts, StoreHost{Host: h, Tasks: mine})
	}
	a.hostsMu.RUnlock()
	slices.SortFunc(hosts, func(x, y StoreHost) int {
		if c := strings.Compare(x.Host.Host, y.Host.Host); c != 0 {
			return c
		}
		return x.Host.Port - y.Host.Port
	})
	return hosts, n > 0 && len(covered) == int(n), nil
}

// StoreNames returns the names of the topology's stores, sorted: the
// key-value stores of its sub-topologies and its global stores.
func (a *App) StoreNames() []string {
	var out []string
	for name := range a.plan.storeSub {
		out = append(out, name)
	}
	for name := range a.plan.globalStore {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// QueryHandler returns an http.Handler serving this worker's stores as
// JSON (interactive queries), for mounting at the root of a mux ("/stores"
// and "/stores/"):
//
//	GET /stores                      the stores and which hosts hold which tasks
//	GET /stores/S/keys/KEY           the value of KEY (its serialized bytes as text)
//	GET /stores/S/keys?key_base64=B  the same, for a binary key
//	GET /stores/S/all                this worker's entries of S
//	GET /stores/S/range?from=&to=    this worker's entries with from ≤ key ≤ to
//
// A key this worker does not own is forwarded to its owner's
// ApplicationServer (see KeyOwner), once: a forwarded request (header
// ForwardedHeader) for a key the receiver does not own answers 503, as
// does a key whose owner is unknown (rebalancing; with Retry-After). /all
// and /range with ?scope=all ask every host of the store and merge the
// answers, sorted by key; from_base64/to_base64 give binary bounds and
// ?limit= caps the entries (default 10000; "truncated" tells). Keys and
// values come as text when they are text ("key", "value"; see QueryEntry)
// and always as base64 ("key_base64", "value_base64"), with the host that
// answered. Unknown stores and keys
// answer 404; errors are JSON {"error": "..."}. Requests to other workers
// time out after 5 s.
func (a *App) QueryHandler() http.Handler {
	q := &queryServer{a: a, client: &http.Client{Timeout: queryTimeout}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stores", q.stores)
	mux.HandleFunc("GET /stores/{$}", q.stores)
	mux.HandleFunc("GET /stores/{store}/keys", q.key)
	mux.HandleFunc("GET /stores/{store}/keys/{key...}", q.key)
	mux.HandleFunc("GET /stores/{store}/all", q.entries)
	mux.HandleFunc("GET /stores/{store}/range", q.entries)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such query: "+r.Method+" "+r.URL.Path)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET")
			writeError(w, http.StatusMethodNotAllowed, "queries are GET requests")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// queryServer serves QueryHandler; client talks to the other workers.
type queryServer struct {
	a      *App
	client *http.Client
}

// QueryEntry is one key and value of a query answer: the key and the
// value as text when they are text (valid UTF-8 without control
// characters other than tab and newlines; nil otherwise: a serialized
// int64, for one) and always as base64, with the ApplicationServer of the
// worker that read it.
type QueryEntry struct {
	Key         *string `json:"key,omitempty"`
	KeyBase64   string  `json:"key_base64"`
	Value       *string `json:"value,omitempty"`
	ValueBase64 string  `json:"value_base64"`
	Host        string  `json:"host"`
}

// asText returns b as a string when it is text (see QueryEntry), else nil.
func asText(b []byte) *string {
	if !utf8.Valid(b) {
		return nil
	}
	s := string(b)
	for _, r := range s {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return nil
		}
	}
	return &s
}

// queryEntries is the answer of /all and /range.
type queryEntries struct {
	Store     string       `json:"store"`
	Scope     string       `json:"scope"`
	Entries   []QueryEntry `json:"entries"`
	Truncated bool         `json:"truncated"`
}

// queryStore describes a store in the answer of /stores.
type queryStore struct {
	Name     string      `json:"name"`
	Global   bool        `json:"global"`
	Complete bool        `json:"complete"`
	Hosts    []queryHost `json:"hosts"`
}

// queryHost is a host of a store in the answer of /stores.
type queryHost struct {
	Host       string   `json:"host"`
	Tasks      []string `json:"tasks"`
	Partitions []int32  `json:"partitions"`
}

func entry(key, value []byte, host string) QueryEntry {
	e := QueryEntry{
		KeyBase64:   base64.StdEncoding.EncodeToString(key),
		ValueBase64: base64.StdEncoding.EncodeToString(value),
		Host:        host,
	}
	e.Key, e.Value = asText(key), asText(value)
	return e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// unavailable answers 503 with Retry-After.
func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", retryAfter)
	writeError(w, http.StatusServiceUnavailable, msg)
}

// self is this worker's ApplicationServer, normalized ("" without).
func (q *queryServer) self() string {
	if q.a.cfg.ApplicationServer == "" {
		return ""
	}
	h, err := parseHost(q.a.cfg.ApplicationServer)
	if err != nil {
		return q.a.cfg.ApplicationServer
	}
	return h.String()
}

// reader returns store's reader, or answers 404.
func (q *queryServer) reader(w http.ResponseWriter, r *http.Request) (*StoreReader, bool) {
	name := r.PathValue("store")
	sr, err := q.a.Store(name)
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown store %q", name))
		return nil, false
	}
	return sr, true
}

func (q *queryServer) stores(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Host   string       `json:"host"`
		Stores []queryStore `json:"stores"`
	}{Host: q.self(), Stores: []queryStore{}}
	for _, name := range q.a.StoreNames() {
		hosts, complete, err := q.a.StoreHosts(name)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		_, global := q.a.plan.globalStore[name]
		s := queryStore{Name: name, Global: global, Complete: complete, Hosts: []queryHost{}}
		for _, h := range hosts {
			qh := queryHost{Host: h.Host.String(), Tasks: []string{}, Partitions: []int32{}}
			for _, id := range h.Tasks {
				qh.Tasks = append(qh.Tasks, id.String())
				qh.Partitions = append(qh.Partitions, id.Partition)
			}
			s.Hosts = append(s.Hosts, qh)
		}
		out.Stores = append(out.Stores, s)
	}
	writeJSON(w, http.StatusOK, out)
}

// decodeKey reads a key from text or, when base64 names a query
// parameter that is set, from base64.
func decodeKey(r *http.Request, text, b64 string) ([]byte, bool, error) {
	if v := r.URL.Query().Get(b64); v != "" {
		if text != "" {
			return nil, false, fmt.Errorf("give the key as text or as %s, not both", b64)
		}
		k, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			k, err = base64.URLEncoding.DecodeString(v)
		}
		if err != nil {
			return nil, false, fmt.Errorf("%s: %v", b64, err)
		}
		return k, true, nil
	}
	if text == "" {
		return nil, false, nil
	}
	return []byte(text), true, nil
}

func (q *queryServer) key(w http.ResponseWriter, r *http.Request) {
	sr, ok := q.reader(w, r)
	if !ok {
		return
	}
	key, ok, err := decodeKey(r, r.PathValue("key"), "key_base64")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !ok {
		writeError(w, http.StatusBadRequest, "no key: use /stores/STORE/keys/KEY or ?key_base64=")
		return
	}
	self := q.self()
	owner, err := q.a.KeyOwner(sr.name, key)
	local := err == nil && owner.String() == self
	if err != nil && !errors.Is(err, ErrNotAvailable) {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !local {
		v, found, gerr := sr.Get(key)
		switch {
		case gerr != nil:
			writeError(w, http.StatusInternalServerError, gerr.Error())
		case r.Header.Get(ForwardedHeader) != "":
			unavailable(w, fmt.Sprintf("this worker (%s) does not own the key of store %q (forwarded request)", self, sr.name))
		case found && err != nil:
			// The owner is unknown (no metadata yet, or this worker has
			// no ApplicationServer) but a local task holds the key.
			writeJSON(w, http.StatusOK, entry(key, v, self))
		case err != nil:
			unavailable(w, fmt.Sprintf("the owner of the key in store %q is not known yet: %v", sr.name, err))
		default:
			q.forward(w, r, owner.String())
		}
		return
	}
	v, found, err := sr.Get(key)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	case !found:
		writeError(w, http.StatusNotFound, fmt.Sprintf("key not found in store %q", sr.name))
	default:
		writeJSON(w, http.StatusOK, entry(key, v, self))
	}
}

// peer sends GET uri (path and query) to host, marked forwarded.
func (q *queryServer) peer(ctx context.Context, host, uri string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+uri, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set(ForwardedHeader, "1")
	resp, err := q.client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody cancels its request's context when closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// forward relays r to host and its answer back.
func (q *queryServer) forward(w http.ResponseWriter, r *http.Request, host string) {
	resp, err := q.peer(r.Context(), host, r.URL.RequestURI())
	if err != nil {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("forwarding to %s: %v", host, err))
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerBody))
	if err != nil {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("forwarding to %s: %v", host, err))
		return
	}
	for _, h := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set(ForwardedHeader, host)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

func (q *queryServer) entries(w http.ResponseWriter, r *http.Request) {
	sr, ok := q.reader(w, r)
	if !ok {
		return
	}
	qv := r.URL.Query()
	var from, to []byte
	isRange := strings.HasSuffix(r.URL.Path, "/range")
	if isRange {
		var err error
		if from, _, err = decodeKey(r, qv.Get("from"), "from_base64"); err == nil {
			to, _, err = decodeKey(r, qv.Get("to"), "to_base64")
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	limit := defaultQueryLimit
	if s := qv.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > maxQueryLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be 1 to %d", maxQueryLimit))
			return
		}
		limit = n
	}
	scope := qv.Get("scope")
	switch scope {
	case "", "local":
		scope = "local"
	case "all":
		if r.Header.Get(ForwardedHeader) != "" {
			scope = "local" // a fan-out's own request: never fan out again
		}
	default:
		writeError(w, http.StatusBadRequest, `scope must be "local" or "all"`)
		return
	}
	out := queryEntries{Store: sr.name, Scope: scope, Entries: []QueryEntry{}}
	if scope == "local" || sr.global {
		if err := q.local(sr, from, to, limit, &out); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	hosts, complete, err := q.a.StoreHosts(sr.name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !complete {
		unavailable(w, fmt.Sprintf("not every task of store %q has a known host yet", sr.name))
		return
	}
	self := q.self()
	uq := url.Values{"scope": {"local"}, "limit": {strconv.Itoa(limit)}}
	if isRange {
		if from != nil {
			uq.Set("from_base64", base64.StdEncoding.EncodeToString(from))
		}
		if to != nil {
			uq.Set("to_base64", base64.StdEncoding.EncodeToString(to))
		}
	}
	uri := r.URL.EscapedPath() + "?" + uq.Encode()
	parts := make([]queryEntries, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		if h.Host.String() == self {
			errs[i] = q.local(sr, from, to, limit, &parts[i])
			continue
		}
		wg.Go(func() { parts[i], errs[i] = q.fetchEntries(r.Context(), h.Host.String(), uri) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			writeError(w, http.StatusBadGateway, fmt.Sprintf("querying %s: %v", hosts[i].Host, err))
			return
		}
		out.Entries = append(out.Entries, parts[i].Entries...)
		out.Truncated = out.Truncated || parts[i].Truncated
	}
	slices.SortStableFunc(out.Entries, func(x, y QueryEntry) int {
		return bytes.Compare(mustB64(x.KeyBase64), mustB64(y.KeyBase64))
	})
	if len(out.Entries) > limit {
		out.Entries, out.Truncated = out.Entries[:limit], true
	}
	writeJSON(w, http.StatusOK, out)
}

func mustB64(s string) []byte {
	b, _ := base64.StdEncoding.DecodeString(s)
	return b
}

// local reads up to limit entries of this worker's copies into out.
func (q *queryServer) local(sr *StoreReader, from, to []byte, limit int, out *queryEntries) error {
	self := q.self()
	for kv, err := range sr.Range(from, to) {
		if err != nil {
			return err
		}
		if len(out.Entries) == limit {
			out.Truncated = true
			break
		}
		out.Entries = append(out.Entries, entry(kv.Key, kv.Value, self))
	}
	return nil
}

// fetchEntries asks host for its local entries.
func (q *queryServer) fetchEntries(ctx context.Context, host, uri string) (queryEntries, error) {
	var out queryEntries
	resp, err := q.peer(ctx, host, uri)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerBody))
	if err != nil {
		return out, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return out, err
	}
	return out, nil
}
