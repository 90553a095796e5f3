/* SPDX-License-Identifier: MIT */
#ifndef FERRY_ISA_H
#define FERRY_ISA_H
#endif
