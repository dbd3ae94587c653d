"""One-off calls of a backend's functions on a Problem, for tests: each call builds the
problem's dataset anew (a fit builds it once)."""

from fastopt import _backends


def objective(backend, problem, params):
    record = _backends.resolve(backend)
    return record.objective(record.dataset(problem), params)


def epoch(backend, problem, state, lrs, batch_size, shuffle, threads=1, lazy=False):
    record = _backends.resolve(backend)
    return record.epoch(record.dataset(problem), state, lrs, batch_size, shuffle, threads, lazy)


class Epochs:
    """``backend``'s epoch function on Problems, each problem's dataset built on its first
    epoch and kept, as a fit keeps it."""

    def __init__(self, backend):
        self.record = _backends.resolve(backend)
        self.data = {}

    def __call__(self, problem, state, lrs, batch_size, shuffle, threads=1, lazy=False):
        if id(problem) not in self.data:
            self.data[id(problem)] = (problem, self.record.dataset(problem))
        data = self.data[id(problem)][1]
        return self.record.epoch(data, state, lrs, batch_size, shuffle, threads, lazy)


class Objective:
    """``backend``'s objective on Problems, ``f(problem, params)``, each problem's dataset
    built on its first call and kept."""

    def __init__(self, backend):
        self.record = _backends.resolve(backend)
        self.data = {}

    def __call__(self, problem, params):
        if id(problem) not in self.data:
            self.data[id(problem)] = (problem, self.record.dataset(problem))
        return self.record.objective(self.data[id(problem)][1], params)
