package cdc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The Confluent wire format of a registry-encoded record key or value:
// magic byte 0, the schema ID as 4 big-endian bytes, then the body (Avro
// binary here). It lives in this package, the lowest that needs it: the
// Avro decoder reads it, and package schemas (which imports this one)
// writes it.

// WireHeaderSize is the size of the wire-format header.
const WireHeaderSize = 5

// ErrWireFormat is returned by SplitWire for bytes that are not in the
// wire format. The Avro decoder reports it as a *DecodeError wrapping
// ErrMalformed.
var ErrWireFormat = errors.New("not in the Confluent wire format")

// AppendWireHeader appends the wire-format header for schema id. The body
// follows.
func AppendWireHeader(dst []byte, id int) []byte {
	return binary.BigEndian.AppendUint32(append(dst, 0), uint32(id))
}

// SplitWire splits a wire-format record part into its schema ID and body,
// which aliases b. Bytes shorter than the header or with another magic
// byte are an error wrapping ErrWireFormat.
func SplitWire(b []byte) (id int, body []byte, err error) {
	if len(b) < WireHeaderSize {
		return 0, nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrWireFormat, len(b), WireHeaderSize)
	}
	if b[0] != 0 {
		return 0, nil, fmt.Errorf("%w: magic byte is %d, not 0", ErrWireFormat, b[0])
	}
	return int(binary.BigEndian.Uint32(b[1:WireHeaderSize])), b[WireHeaderSize:], nil
}
