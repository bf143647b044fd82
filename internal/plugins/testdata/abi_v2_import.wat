;; abi_v2_import.wat: a plugin built for evp_v2 (imports evp_v2, exports evp_abi_v2).
(module
  (import "evp_v2" "log" (func (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "evp_abi_v2"))
  (func (export "evp_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "evp_init") (param i32 i32) (result i32) (i32.const 0))
  (func (export "evp_process") (param i32 i32) (result i64) (i64.const -1))
)
