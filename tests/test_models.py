import pytest
import torch

from gap_art.models import MODELS, ModelInputError, create_model, model_names

SHAPES = {
    "small-cnn": (1, 8, 8),
    "lenet": (1, 28, 28),
    "lenet-wide": (1, 28, 28),
    "mlp": (3, 20, 12),  # any size
    "resnet20": (3, 32, 32),
    "resnet20-28": (1, 28, 28),
    "resnet56": (3, 32, 32),
    "vgg11-bn": (3, 32, 32),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_registered_models_give_one_logit_per_class(name):
    model = create_model(name, SHAPES[name], 7).eval()
    with torch.no_grad():
        assert model(torch.rand(2, *SHAPES[name])).shape == (2, 7)


def test_registry_covers_every_model():
    assert set(model_names()) == set(MODELS) == set(SHAPES)


def test_resnet_depths_match_their_names():
    convs20 = sum(isinstance(m, torch.nn.Conv2d) for m in create_model("resnet20", (3, 32, 32), 10).modules())
    convs56 = sum(isinstance(m, torch.nn.Conv2d) for m in create_model("resnet56", (3, 32, 32), 10).modules())
    assert (convs20 + 1, convs56 + 1) == (20, 56)  # + the final linear layer


def test_wrong_input_shape_names_the_expected_one():
    with pytest.raises(ModelInputError, match=r"expects input shape \(1, 8, 8\)"):
        create_model("small-cnn", (1, 28, 28), 10)
    with pytest.raises(ModelInputError, match="channels, height, width"):
        create_model("lenet", (28, 28), 10)


def test_unknown_model_lists_known_ones():
    with pytest.raises(ValueError, match="lenet.*resnet20.*small-cnn"):
        create_model("alexnet-9000", (3, 32, 32), 10)


def test_any_torchvision_classifier_by_name():
    model = create_model("resnet18", (3, 32, 32), 10).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(ModelInputError, match="3 input channels"):
        create_model("resnet18", (1, 28, 28), 10)
