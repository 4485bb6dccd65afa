"""What the tests share: running the tap (`runs`: in this process or as its command), minting
tokens (`tokens`, the emulator's minter), comparing runs (`compare`), a throwaway PostgreSQL
cluster (`postgres`, which `make bench` and `make scale-demo` use too); fixtures are in
`tests/conftest.py`."""
