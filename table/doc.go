// Package table holds state stores: key-value, window and session stores,
// backed by badger, with record caching and changelog logging and restore.
//
// It is being built (see the streams issues); today it holds only this
// description.
package table
