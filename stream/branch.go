package stream

import (
	"strconv"
)

// BranchedStream splits a stream into branches: Kafka Streams'
// BranchedKStream. Each record goes to the first branch whose predicate
// matches, or to the default branch, or is dropped.
type BranchedStream[K, V any] struct {
	s     KStream[K, V]
	split *node
	name  string
	preds []func(K, V) bool
	names []string
	done  bool
}

// Split starts a split; name prefixes the branch names (default: the split
// node's name).
func (s KStream[K, V]) Split(name string) *BranchedStream[K, V] {
	bs := &BranchedStream[K, V]{s: s}
	n := addFn(s.b, &node{op: "split", name: name}, "KSTREAM-BRANCH", func(ctx *procCtx[K, V]) (func(Record[K, V]) error, error) {
		return func(r Record[K, V]) error {
			for i, p := range bs.preds {
				if p(r.Key, r.Value) {
					ctx.children[i].process(r)
					return nil
				}
			}
			if len(ctx.children) > len(bs.preds) {
				ctx.children[len(bs.preds)].process(r)
			}
			return nil
		}, nil
	}, s.n)
	bs.split = n
	bs.name = name
	if bs.name == "" {
		bs.name = n.name // Kafka: "KSTREAM-BRANCH-0000000001" + "1"
	}
	return bs
}

// Branch adds a branch taking records for which pred is true (and no
// earlier branch matched). name "" numbers branches from 1.
func (bs *BranchedStream[K, V]) Branch(pred func(K, V) bool, name string) *BranchedStream[K, V] {
	if bs.done {
		bs.s.b.errorf("split", bs.split.name, "Branch after DefaultBranch or NoDefaultBranch")
		return bs
	}
	if name == "" {
		name = strconv.Itoa(len(bs.preds) + 1)
	}
	bs.preds = append(bs.preds, pred)
	bs.names = append(bs.names, name)
	return bs
}

// DefaultBranch ends the split with a branch for the records no predicate
// matched (named "0" when name is ""), and returns the branches keyed by
// split name + branch name, as Kafka Streams does.
func (bs *BranchedStream[K, V]) DefaultBranch(name string) map[string]KStream[K, V] {
	if name == "" {
		name = "0"
	}
	return bs.finish(name, true)
}

// NoDefaultBranch ends the split; records no predicate matched are dropped.
func (bs *BranchedStream[K, V]) NoDefaultBranch() map[string]KStream[K, V] {
	return bs.finish("", false)
}

func (bs *BranchedStream[K, V]) finish(def string, withDefault bool) map[string]KStream[K, V] {
	out := map[string]KStream[K, V]{}
	if bs.done {
		bs.s.b.errorf("split", bs.split.name, "split already ended")
		return out
	}
	bs.done = true
	names := bs.names
	if withDefault {
		names = append(names, def)
	}
	for _, nm := range names {
		full := bs.name + nm
		if _, dup := out[full]; dup {
			bs.s.b.errorf("split", bs.split.name, "duplicate branch name %q", nm)
			continue
		}
		n := stateless(bs.s.b, "branch", full, "KSTREAM-BRANCHCHILD", bs.split, func(ctx *procCtx[K, V], r Record[K, V]) error {
			ctx.Forward(r)
			return nil
		})
		out[full] = bs.s.derive(n)
	}
	if len(out) == 0 {
		bs.s.b.errorf("split", bs.split.name, "split %q has no branches", bs.name)
	}
	return out
}
