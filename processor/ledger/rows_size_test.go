package ledger

import "unsafe"

func unsafeSizeofRowSlot() uintptr { return unsafe.Sizeof(rowSlot{}) }
