package schemas

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// WireHeaderSize is the size of the Confluent wire-format header.
const WireHeaderSize = 5

// ErrWireFormat is returned by SplitWire for bytes that are not in the
// Confluent wire format.
var ErrWireFormat = errors.New("schemas: not in the Confluent wire format")

// AppendHeader appends the wire-format header for schema id: magic byte 0
// and the ID as 4 big-endian bytes. The Avro body follows.
func AppendHeader(dst []byte, id int) []byte {
	return binary.BigEndian.AppendUint32(append(dst, 0), uint32(id))
}

// SplitWire splits a wire-format record part into its schema ID and Avro
// body, which aliases b.
func SplitWire(b []byte) (id int, body []byte, err error) {
	if len(b) < WireHeaderSize {
		return 0, nil, fmt.Errorf("%w: %d bytes, shorter than the header", ErrWireFormat, len(b))
	}
	if b[0] != 0 {
		return 0, nil, fmt.Errorf("%w: magic byte %d", ErrWireFormat, b[0])
	}
	return int(binary.BigEndian.Uint32(b[1:5])), b[5:], nil
}
