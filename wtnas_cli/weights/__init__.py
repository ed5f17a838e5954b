"""Weight transfer: matching shape sequences, planning the copy, and the HDF5 checkpoints it reads
and writes."""
