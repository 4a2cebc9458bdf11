"""The cloud side: a gRPC server that runs any unit range of the model it holds."""
