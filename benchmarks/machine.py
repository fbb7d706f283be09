"""Describe the machine a benchmark ran on, and its fp32 peak where it can be derived."""
from __future__ import annotations

import os
import platform

import torch


def _cpuinfo() -> dict:
    info = {}
    try:
        with open('/proc/cpuinfo') as stream:
            for line in stream:
                key, _, value = line.partition(':')
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def cpu_description() -> dict:
    info = _cpuinfo()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    flags = set(info.get('flags', '').split())
    mhz = float(info.get('cpu MHz', 0) or 0)
    # AMD cores up to Zen 4 run AVX-512 on two 256-bit FMA pipes: 32 fp32 FLOP/cycle like AVX2.
    wide_fma = 'avx512f' in flags and info.get('vendor_id') == 'GenuineIntel'
    flops_per_cycle = 64 if wide_fma else 32 if {'avx2', 'fma'} <= flags else 16
    peak = cores * mhz * 1e-3 * flops_per_cycle if mhz else None
    return {'cpu': info.get('model name', platform.processor() or platform.machine()), 'cores': cores,
            'mhz': mhz, 'fp32_flops_per_cycle_per_core': flops_per_cycle, 'cpu_peak_gflops': peak,
            'torch_threads': torch.get_num_threads(), 'torch': torch.__version__}


def describe(device: str) -> dict:
    description = cpu_description()
    if device.startswith('cuda'):
        description['gpu'] = torch.cuda.get_device_name(torch.device(device))
    return description


def machine_name(description: dict, device: str) -> str:
    if device.startswith('cuda'):
        return description['gpu']
    return f"{description['cpu']} ({description['cores']} cores)"
