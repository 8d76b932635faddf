"""nabla: values, gradients, Jacobians and Hessians of expressions, over HTTP."""

__version__ = "0.1.0"
