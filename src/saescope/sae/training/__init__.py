"""What an architecture's training loss is built from: the loss pieces (reconstruction error, fire
counts, L1, AuxK) and the sparse TopK / ReLU forward and backward paths. They live with the
architectures (sae/architectures/ imports them) so that saescope.sae never imports saescope.train.
"""
