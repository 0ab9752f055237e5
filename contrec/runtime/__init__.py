"""What the machine allows: threads, memory, BLAS limits, progress bars, atomic files."""
