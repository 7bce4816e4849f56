// SPDX-License-Identifier: Apache-2.0

package kvcore

import "runtime"

// native owns one SWIG object; Recorder and Pool share its Close logic and its closed check.
type native[T any] struct {
	raw    T
	free   func(T)
	closed bool
}

// close frees the object the first time; later calls do nothing.
func (n *native[T]) close() {
	if !n.closed {
		n.free(n.raw)
		n.closed = true
	}
}

// call runs fn on the object and turns a failed C call into an *Error. owner (the Go value holding n)
// stays reachable until fn returns, so its finalizer cannot free the object mid-call.
func (n *native[T]) call(owner any, fn func(T)) (err error) {
	if n.closed {
		return ErrClosed
	}
	defer catch(&err)
	fn(n.raw)
	runtime.KeepAlive(owner)
	return nil
}
