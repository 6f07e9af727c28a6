"""Stand-in for ``comfy.model_management``: a CPU-only machine (as ``--cpu``), with ComfyUI's interrupt flag."""
import torch

interrupt_processing = False
free_memory_calls: list = []


class InterruptProcessingException(Exception):
    pass


def get_torch_device():
    return torch.device("cpu")


def unet_offload_device():
    return torch.device("cpu")


def text_encoder_offload_device():
    return torch.device("cpu")


def should_use_fp16(device=None, model_params=0, prioritize_performance=True, manual_cast=False):
    return False


def should_use_bf16(device=None, model_params=0, prioritize_performance=True, manual_cast=False):
    return False


def free_memory(memory_required, device, keep_loaded=()):
    free_memory_calls.append((memory_required, device))


def soft_empty_cache(force=False):
    pass


def interrupt_current_processing(value=True):
    global interrupt_processing
    interrupt_processing = value


def processing_interrupted():
    return interrupt_processing


def throw_exception_if_processing_interrupted():
    global interrupt_processing
    if interrupt_processing:
        interrupt_processing = False
        raise InterruptProcessingException()
