"""The gRPC shell around the engine: conversion, status mapping, servicer, server."""
