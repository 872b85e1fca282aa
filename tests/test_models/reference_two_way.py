"""An independent float64 reference of the two-way loss (eqs. 12-17, 22),
written from the paper's equations with explicit Python loops, for the
tests of the loss and of the head."""
import torch


def ref_pool(values, t):
    """T log sum exp(v / T), or max(v) for T = 0 — written from eq. 12."""
    v = torch.stack(values)
    if t == 0:
        return v.max()
    return t * torch.log(torch.exp(v / t).sum())


def ref_ell(xs, ys, tp, tn, margin):
    """Eq. 14 on one vector; None when it has no positive (left out)."""
    pos = [x for x, y in zip(xs, ys) if y > 0]
    neg = [x for x, y in zip(xs, ys) if y == 0]
    if not pos:
        return None
    if not neg:
        return xs[0] * 0.  # contributes 0 and counts
    z = ref_pool(neg, tn) + ref_pool([-p for p in pos], tp) + margin
    return torch.log1p(torch.exp(z))


def ref_mean(losses):
    kept = [v for v in losses if v is not None]
    return torch.stack(kept).mean() if kept else torch.zeros((),
                                                            dtype=torch.float64)


def ref_bucket(X, Y, tp=4., tn=1., ways='both', margin=0.):
    """Loss of one bucket with explicit loops over rows and columns."""
    m, c = Y.shape
    rows = [[X[i, j] for j in range(c)] for i in range(m)]
    cols = [[X[i, j] for i in range(m)] for j in range(c)]
    if ways == 'joint':
        v = ref_ell([X[i, j] for i in range(m) for j in range(c)],
                    Y.flatten().tolist(), tp, tn, margin)
        return v if v is not None else torch.zeros((), dtype=torch.float64)
    out = torch.zeros((), dtype=torch.float64)
    if ways in ('both', 'sample'):
        out = out + ref_mean([
            ref_ell(rows[i], Y[i].tolist(), tp, tn, margin) for i in range(m)
        ])
    if ways in ('both', 'class'):
        out = out + ref_mean([
            ref_ell(cols[j], Y[:, j].tolist(), tp, tn, margin)
            for j in range(c)
        ])
    return out
