// Package window defines windows and time arithmetic: tumbling, hopping,
// sliding, session and join windows, and grace periods.
//
// It is being built (see the streams issues); today it holds only this
// description.
package window
