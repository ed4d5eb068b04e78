"""avgas: a runnable reproduction of AV-GAS (Kang & Brandão, "Seeing Soundscapes").

The notebooks in notebooks/ tell the story; these modules do the work:
core (the paper's method and metrics: separator, Eq. 1-5, R@K; tensors in, tensors out),
separators (trained separators read back), params (typed run settings), world (the synthetic soundscape world), sounds and pictures (its
designs), data (catalogue, splits, training tuples), spectrogram (Sound2Scene's transform),
report (figures and tables), runner (papermill runs).
"""

__version__ = "0.1.0"
