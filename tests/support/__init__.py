"""What the tests share: running the tap (in this process or as its command), comparing runs."""
