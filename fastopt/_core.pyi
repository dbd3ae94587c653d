"""Type stub of fastopt's private compiled module (csrc/bindings)."""

from enum import Enum

import numpy as np

class Optim(Enum):
    sgd = 0
    adagrad = 1
    rmsprop = 2
    adadelta = 3
    adam = 4
    nadam = 5
    radam = 6

class OptimConfig:
    kind: Optim
    lr: float
    weight_decay: float
    decoupled_weight_decay: bool
    momentum: float
    dampening: float
    nesterov: bool
    lr_decay: float
    initial_accumulator_value: float
    alpha: float
    centered: bool
    rho: float
    beta1: float
    beta2: float
    amsgrad: bool
    momentum_decay: float
    eps: float
    def __init__(self) -> None: ...

def state_size(config: OptimConfig) -> int: ...
def optimizer_step(config: OptimConfig, params: np.ndarray, grad: np.ndarray,
                   state: dict[str, np.ndarray], step: int, mu_product: float,
                   lr: float) -> tuple[int, float]: ...
def cpu_target() -> str: ...
def cpu_targets() -> list[str]: ...
def set_cpu_target(name: str) -> None: ...

class Model(Enum):
    linear = 0
    logistic = 1
    softmax = 2

class Penalty(Enum):
    none = 0
    l2 = 1
    l1 = 2
    elasticnet = 3

class ModelSpec:
    model: Model
    n_features: int
    n_outputs: int
    fit_intercept: bool
    penalty: Penalty
    alpha: float
    l1_ratio: float
    def __init__(self) -> None: ...

class Dataset:
    """The data of one fit, checked once (shapes, dtypes, softmax labels, CSR structure); the
    FASTOPT_* tuning variables are read at construction. The arrays are kept, not copied."""
    def __init__(self, spec: ModelSpec,
                 X: np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray, int], y: np.ndarray,
                 sample_weight: np.ndarray | None = None, mean: np.ndarray | None = None,
                 inv_std: np.ndarray | None = None) -> None: ...
    @property
    def n_samples(self) -> int: ...
    @property
    def n_features(self) -> int: ...
    @property
    def sparse(self) -> bool: ...
    @property
    def unique_columns(self) -> bool: ...
    @property
    def dtype(self) -> np.dtype: ...
    @property
    def tuning(self) -> dict[str, int | bool]: ...

def run_epoch(data: Dataset, params: np.ndarray, optimizer: OptimConfig,
              state: dict[str, np.ndarray], step: int, mu_product: float, batch_size: int,
              shuffle: bool, seed: int, epoch: int, lrs: np.ndarray, threads: int = 1,
              lazy: bool = False,
              shuffle_batches: bool = False) -> tuple[float, int, int, int, int, float]: ...
def objective(data: Dataset, params: np.ndarray,
              threads: int = 1) -> tuple[float, np.ndarray]: ...
def hessian(data: Dataset, params: np.ndarray) -> np.ndarray: ...
def saga_epoch(data: Dataset, w: np.ndarray, table: np.ndarray, sums: np.ndarray, step: float,
               seed: int, epoch: int) -> tuple[float, int, int, int]: ...

class HessianOperator:
    """v -> H(params) v for the full objective of a Dataset (penalty none or l2): the rows'
    curvature at params is computed once, at construction; each product is one pass over X,
    in row blocks summed in a fixed order (the same bits for any ``threads``). Not for calls
    from two threads at once (it keeps scratch memory)."""
    def __init__(self, data: Dataset, params: np.ndarray, threads: int = 1) -> None: ...
    def __call__(self, v: np.ndarray) -> np.ndarray: ...

def run_many_epoch(data: Dataset, specs: list[ModelSpec], params: list[np.ndarray],
                   optimizers: list[OptimConfig], states: list[dict[str, np.ndarray]],
                   step: list[int], mu_product: list[float], batch_size: int, shuffle: bool,
                   seed: int, epoch: int, lrs: np.ndarray,
                   shuffle_batches: bool = False) -> list[tuple[float, int, int, int, int,
                                                                float]]: ...
def many_objective(data: Dataset, params: list[np.ndarray]) -> list[float]: ...
def shuffled_order(n: int, seed: int, epoch: int, batch_size: int = 0) -> np.ndarray: ...
def read_rows(X: np.ndarray, order: np.ndarray) -> float: ...
def column_moments(X: np.ndarray,
                   sample_weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]: ...
