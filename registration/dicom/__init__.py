"""DICOM without Django: ``read`` (series → volume), ``seg`` (DICOM SEG → label), ``write``
(volume → de-identified instances), ``geometry`` (grids in patient space), ``deid`` and its
vocabulary ``deid_vocab`` (PS3.15 de-identification)."""
